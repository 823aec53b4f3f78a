"""Calibration as pure code: which concurrency to try next, when to stop, and where the knee is.

A closed-loop user (no wait time) keeps one request in flight, so ``users`` is the concurrency
offered to the endpoint, and by Little's law each user's throughput is 1 / latency. Below the
endpoint's capacity, throughput grows linearly with users at a flat latency; past it, throughput
flattens and latency grows (requests queue). The search:

1. **Explore**: start at ``start_users`` and multiply by ``step_factor`` each step, until a step
   breaks the SLO, passes the error-rate limit, or throughput stops growing (*plateau*: the added
   users brought less than ``PLATEAU_EFFICIENCY`` of the throughput they would in the linear
   region), or ``max_users`` is reached.
2. **Refine** (bisection) until the knee is bracketed within ``KNEE_PRECISION`` (or one user).
   After an SLO or error-rate stop, between the last good and the first bad concurrency; the
   knee is the last one that held the SLO and the error limit. After a plateau, between the last
   concurrency still climbing and the first on the plateau (throughput within
   ``1 - PLATEAU_SHARE`` of the highest); the knee is that first one. Defined by throughput alone,
   it is not fooled by a client overhead that grows slowly with concurrency.

**By rate** (``mode`` rate): the same search over the *arrival rate* (an integer number of requests
per second, open loop, constant arrivals), with one more verdict: a step whose completions fall short
of the rate offered by more than ``KEEP_UP`` (or that dropped arrivals) is *overloaded*: the endpoint
cannot keep up, its queue grows. That verdict replaces the plateau rule, and the bracket closes to
``KNEE_PRECISION_RATE``. The knee is the highest rate that kept up, met the SLO and the error limit.

The measurements arrive as :class:`Window` objects (what a step measured after its warm-up);
:mod:`.shape` produces them inside Locust. No Locust import here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from smload.measure.health import generator_busy
from smload.measure.histogram import Histogram
from smload.record import UNKNOWN, Identity
from smload.results.checks import Check, Observed, evaluate, format_value

from . import policies

PLATEAU_EFFICIENCY = 0.10  # marginal throughput per added user, relative to the linear region
PLATEAU_SHARE = 0.90  # on the plateau: throughput at least this share of the highest
KNEE_PRECISION = 0.05  # refine until the bracket's two concurrencies are this close (relative)
STEP_PERCENTILES = (50, 90, 95, 99)
KEEP_UP = 0.02  # by rate: completions at least this close to the rate offered
KNEE_PRECISION_RATE = 0.025
USERS, RATE = "users", "rate"
MODES = (USERS, RATE)

# Stop reasons (calibration.json "stop_reason").
SLO = "slo"
ERROR_RATE = "error_rate"
PLATEAU = "plateau"
MAX_USERS = "max_users"
NO_RESPONSES = "no_responses"
OVERLOADED = "overloaded"  # by rate: the endpoint did not keep up with the rate offered
MAX_STEPS = "max_steps"
STOPPED = "stopped"  # the test was stopped before calibration finished
STOP_TEXT = {
    SLO: "the SLO was broken",
    ERROR_RATE: "the error rate passed its limit",
    PLATEAU: "throughput stopped growing (plateau)",
    MAX_USERS: "--max-users (--max-rate) was reached",
    OVERLOADED: "the endpoint did not keep up with the rate offered",
    NO_RESPONSES: "no request completed",
    MAX_STEPS: "--max-steps was reached",
    STOPPED: "the test was stopped before calibration finished",
    None: "not finished",
}

GOOD = "ok"


@dataclass(frozen=True)
class SearchRules:
    """What a step must meet (SLOs, error limit) and how the steps go (start, factor, bounds, times)."""

    slos: tuple[Check, ...] = ()
    max_error_rate: float = 0.01
    start_users: int = 1
    step_factor: float = 2.0
    max_users: int = 256
    warmup_s: float = 5.0
    measure_s: float = 10.0
    max_steps: int = 40
    # the plateau rule's bar; LLM endpoints with token SLOs use 0 (only a fall in throughput): their tokens/s
    # keeps growing slowly with the batch up to its limit, and it is the TPOT/TTFT objective that bends
    plateau_efficiency: float = PLATEAU_EFFICIENCY
    mode: str = USERS  # by rate, start_users and max_users are rates (req/s)

    @property
    def by_rate(self) -> bool:
        return self.mode == RATE

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "slo": [slo.text for slo in self.slos],
            "max_error_rate": self.max_error_rate,
            "start_users": self.start_users,
            "step_factor": self.step_factor,
            "max_users": self.max_users,
            "step_warmup_s": self.warmup_s,
            "step_time_s": self.measure_s,
            "max_steps": self.max_steps,
        }


@dataclass
class Traffic:
    """Requests, failures, throughput and latencies of one selection over a step's window; for LLM
    endpoints also the token timings (ttft, itl, tpot), output tokens and goodput (None: not given)."""

    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    histogram: Histogram = field(default_factory=Histogram)
    timings: dict[str, Histogram] = field(default_factory=dict)
    output_tokens: int = 0
    good: int | None = None

    @property
    def output_tps(self) -> float:
        """Output tokens per second, over the same window as ``rps``."""
        return self.output_tokens * self.rps / self.requests if self.requests else 0.0

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def add(self, other: Traffic) -> Traffic:
        """Two selections together over the same window."""
        self.requests += other.requests
        self.failures += other.failures
        self.rps += other.rps
        self.histogram.merge(other.histogram)
        for kind, h in other.timings.items():
            self.timings.setdefault(kind, Histogram()).merge(h)
        self.output_tokens += other.output_tokens
        if other.good is not None:
            self.good = (self.good or 0) + other.good
        return self

    def observed(self) -> Observed:
        return Observed(
            self.histogram,
            self.requests,
            self.failures,
            self.rps,
            self.timings,
            self.output_tokens,
            self.good,
        )

    def as_dict(self) -> dict:
        h = self.histogram
        out = {
            "requests": self.requests,
            "failures": self.failures,
            "rps": round(self.rps, 3),
            "error_rate": round(self.error_rate, 6),
        }
        for p in STEP_PERCENTILES:
            out[f"p{p}_ms"] = round(h.quantile(p / 100), 3) if h.count else None
        out["avg_ms"] = round(h.mean, 3) if h.count else None
        for kind, timing in sorted(self.timings.items()):
            for p in (50, 99):
                out[f"{kind}_p{p}_ms"] = round(timing.quantile(p / 100), 3) if timing.count else None
        if self.output_tokens:
            out["output_tokens"] = self.output_tokens
            out["output_tokens_per_s"] = round(self.output_tps, 1)
        if self.good is not None:
            out["goodput"] = round(self.good / self.requests, 4) if self.requests else None
        return out


@dataclass
class Window:
    """What one step measured after its warm-up. Times are seconds since calibration started."""

    users: int
    started: float  # the step began (users were asked for)
    start: float  # the measured window
    end: float
    total: Traffic
    names: dict[Identity, Traffic] = field(
        default_factory=dict
    )  # per request identity (name: "<endpoint>/<variant>")
    errors: dict[str, int] = field(default_factory=dict)  # failures per error text, in the window
    cpu_percent: float | None = None  # the busiest load generator process (smload.generator_health)
    loop_lag_ms: float | None = None  # the worst mean event-loop lag of a load generator process
    offered: float | None = None  # by rate: the rate offered (req/s)
    dropped: int = 0  # by rate: arrivals dropped in the window (the in-flight ceiling)


@dataclass
class Step:
    index: int
    phase: str  # "explore" or "refine"
    window: Window
    verdict: str  # GOOD, SLO, ERROR_RATE or NO_RESPONSES
    reasons: list[str]

    @property
    def users(self) -> int:
        return self.window.users

    @property
    def rps(self) -> float:
        return self.window.total.rps

    @property
    def good(self) -> bool:
        return self.verdict == GOOD

    def generator_busy(self) -> str | None:
        """Why the load generator itself may have shaped this step's figures, if it may have."""
        w = self.window
        median = w.total.histogram.quantile(0.5) if w.total.histogram.count else 0.0
        return generator_busy(w.cpu_percent, w.loop_lag_ms, median)

    def as_dict(self) -> dict:
        w = self.window
        out = {
            "index": self.index,
            "phase": self.phase,
            "users": w.users,
            "started_s": round(w.started, 3),
            "window_s": [round(w.start, 3), round(w.end, 3)],
        }
        if w.offered is not None:  # by rate: "users" is the rate offered
            out.update(offered_rps=w.offered, dropped=w.dropped)
        out.update(w.total.as_dict())
        out["max_ms"] = round(w.total.histogram.max, 3) if w.total.histogram.count else None
        out.update(
            {
                "errors": dict(sorted(w.errors.items(), key=lambda kv: -kv[1])),
                "cpu_percent": None if w.cpu_percent is None else round(w.cpu_percent, 1),
                "loop_lag_ms": None if w.loop_lag_ms is None else round(w.loop_lag_ms, 3),
                "verdict": self.verdict,
                "reasons": self.reasons,
                "names": {identity.name: traffic.as_dict() for identity, traffic in sorted(w.names.items())},
            }
        )
        return out


def judge(window: Window, settings: SearchRules) -> tuple[str, list[str]]:
    """A step's verdict from its own measurements: errors first, then the SLO."""
    total = window.total
    if total.requests == 0:
        return NO_RESPONSES, [
            f"no request completed in {window.end - window.start:.0f} s with {window.users} users"
        ]
    if total.error_rate > settings.max_error_rate:
        return ERROR_RATE, [
            f"error rate {format_value('error_rate', total.error_rate)} > "
            f"{format_value('error_rate', settings.max_error_rate)}"
        ]
    if window.offered:
        if total.rps < (1 - KEEP_UP) * window.offered:
            return OVERLOADED, [f"{total.rps:.1f} of the {window.offered:g} req/s offered completed"]
        if window.dropped:
            return OVERLOADED, [f"{window.dropped} arrivals dropped (--max-in-flight reached)"]
    observe = {
        None: total.observed(),
        **{identity.name: t.observed() for identity, t in window.names.items()},
    }
    broken = [r for r in evaluate(settings.slos, observe.get) if not r.passed]
    if broken:
        return SLO, [
            f"{r.check.metric}{f'[{r.check.name}]' if r.check.name else ''} "
            f"{format_value(r.check.metric, r.value)}, SLO {r.check.describe()}"
            + (f" ({r.note})" if r.note else "")
            for r in broken
        ]
    return GOOD, []


@dataclass
class Knee:
    users: int  # the last good concurrency (SLO or error stop), or the first on the plateau
    rps: float
    bracket: tuple[int, int]  # the bisection's last two concurrencies


class Search:
    """The step schedule as a state machine: ask :meth:`next_users`, run that step, :meth:`record` it."""

    def __init__(self, settings: SearchRules):
        self.settings = settings
        self.steps: list[Step] = []
        self.stop_reason: str | None = None
        self.stop_detail: str = ""
        self.refining = False
        self.done = False
        self._lo = 0  # refinement bracket: lo below the knee's boundary (0: none), hi above it
        self._hi = 0
        self._plateau_floor: float | None = None  # after a plateau: the throughput that counts as on it
        self._capacity: float | None = None  # by rate: what the last overloaded step completed per second

    # --- the schedule ------------------------------------------------------------------------

    def next_users(self) -> int | None:
        if self.done:
            return None
        if len(self.steps) >= self.settings.max_steps:
            self._finish(
                MAX_STEPS if self.stop_reason is None else self.stop_reason,
                extra=f"stopped after {self.settings.max_steps} steps (--max-steps)",
            )
            return None
        if self.refining:
            if self._bracket_closed():
                self._finish(self.stop_reason)
                return None
            return self._next_rate() if self.settings.by_rate else (self._lo + self._hi) // 2
        if not self.steps:
            return min(self.settings.start_users, self.settings.max_users)
        last = self.steps[-1].users
        return min(self.settings.max_users, max(last + 1, math.ceil(last * self.settings.step_factor)))

    def _next_rate(self) -> int:
        """By rate: an overloaded step's completions are the endpoint's capacity, nearly: try just that,
        then a notch above the highest good rate (closing the bracket); else bisect."""
        lo, hi = self._lo, self._hi
        if self._capacity is not None:
            for guess in (math.floor(self._capacity), math.floor(lo * (1 + KNEE_PRECISION_RATE) + 1e-9)):
                if lo < guess < hi and guess not in {s.users for s in self.steps}:
                    return guess
        return (lo + hi) // 2

    def record(self, window: Window) -> Step:
        verdict, reasons = judge(window, self.settings)
        step = Step(len(self.steps) + 1, "refine" if self.refining else "explore", window, verdict, reasons)
        if verdict == OVERLOADED and window.total.requests:
            self._capacity = window.total.rps
        self.steps.append(step)
        if self.refining:
            self._refine(step)
        else:
            self._explore(step)
        return step

    def stop(self, detail: str = "the test was stopped before calibration finished") -> None:
        """The test ended early (Ctrl-C, the web UI's stop): keep what was measured."""
        if not self.done:
            self._finish(self.stop_reason or STOPPED, extra=detail)

    # --- explore and refine ------------------------------------------------------------------

    def _explore(self, step: Step) -> None:
        good_before = [s for s in self.steps[:-1] if s.good]
        if not step.good:
            self.stop_reason = step.verdict
            load = f"{step.users} req/s offered" if self.settings.by_rate else f"{step.users} users"
            self.stop_detail = f"{load}: " + "; ".join(step.reasons)
            self._start_refinement(max((s.users for s in good_before), default=0), step.users)
            return
        best = max(good_before, key=lambda s: s.rps, default=None)
        if best is not None and step.users > best.users and not self.settings.by_rate:
            gain = step.rps / best.rps - 1 if best.rps else math.inf
            added = step.users / best.users - 1
            if gain < self.settings.plateau_efficiency * added:
                self.stop_reason = PLATEAU
                self.stop_detail = (
                    f"{step.users} users gave {step.rps:.1f} req/s, {gain:+.1%} over "
                    f"{best.users} users ({best.rps:.1f} req/s) for {added:+.0%} users"
                )
                self._plateau_floor = PLATEAU_SHARE * max(best.rps, step.rps)
                hi = min(s.users for s in self.steps if s.good and s.rps >= self._plateau_floor)
                self._start_refinement(max((s.users for s in self.steps if s.users < hi), default=0), hi)
                return
        if step.users >= self.settings.max_users:
            self.stop_reason = MAX_USERS
            self.stop_detail = (
                f"reached --max-users {self.settings.max_users} without breaking the SLO, the error "
                "limit or a throughput plateau: the endpoint was not saturated"
            )
            self._finish(MAX_USERS)

    def _start_refinement(self, lo: int, hi: int) -> None:
        self._lo, self._hi = lo, hi
        self.refining = True
        if self._bracket_closed():
            self._finish(self.stop_reason)

    def _refine(self, step: Step) -> None:
        if self._plateau_floor is None:  # SLO or error stop: is this concurrency still good?
            below = step.good
        else:  # plateau: is throughput still climbing towards it? (a bad step is past the knee)
            below = step.good and step.rps < self._plateau_floor
        if below:
            self._lo = step.users
        else:
            self._hi = step.users

    def _bracket_closed(self) -> bool:
        if self._lo == 0:
            return self._hi <= 1
        precision = KNEE_PRECISION_RATE if self.settings.by_rate else KNEE_PRECISION
        return self._hi - self._lo <= max(1, math.floor(precision * self._lo))

    def _finish(self, reason: str | None, extra: str = "") -> None:
        self.stop_reason = reason
        if extra:
            self.stop_detail = f"{self.stop_detail}; {extra}" if self.stop_detail else extra
        self.done = True

    # --- results -----------------------------------------------------------------------------

    @property
    def best_step(self) -> Step | None:
        """The good step with the highest throughput: its throughput is the maximum sustainable."""
        return max((s for s in self.steps if s.good), key=lambda s: s.rps, default=None)

    @property
    def knee_step(self) -> Step | None:
        if not self.refining:
            return None
        users = self._lo if self._plateau_floor is None else self._hi
        at_knee = [s for s in self.steps if s.users == users and s.good]
        return max(at_knee, key=lambda s: s.rps, default=None)

    @property
    def knee(self) -> Knee | None:
        step = self.knee_step
        return Knee(step.users, step.rps, (self._lo, self._hi)) if step else None

    def warnings(self) -> list[str]:
        out = []
        busy = [(s, why) for s in self.steps if (why := s.generator_busy())]
        if busy:
            first, why = busy[0]
            out.append(
                f"the load generator was saturated at step {first.index} ({first.users} users: {why}), so the "
                "knee may be the generator's, not the endpoint's; add workers (--processes, or more worker "
                "pods) and calibrate again"
            )
        if self.stop_reason == MAX_USERS:
            out.append(
                f"the endpoint was not saturated at --max-users {self.settings.max_users}: the maximum is a "
                "lower bound; raise --max-users"
            )
        if self.steps and self.best_step is None:
            out.append(
                "no step met the SLO and the error limit: there is no sustainable throughput to recommend"
            )
        return out


@dataclass(frozen=True)
class Instances:
    """Where the instance counts come from: DescribeEndpoint (per variant) or ``--instances N``
    (taken as the count of every variant that received traffic)."""

    source: str  # "DescribeEndpoint" or "--instances"
    per_variant: dict[str, int] | None = None
    each: int | None = None

    def of(self, variant: str) -> int | None:
        if self.per_variant is not None:
            return self.per_variant.get(variant)
        return self.each


def summarize(
    search: Search,
    instances: Instances,
    safety_factor: float,
    endpoint: str | None,
    region: str | None = None,
    settings: dict | None = None,
    started_at: str | None = None,
    duration_s: float | None = None,
    component: bool = False,
) -> dict:
    """Everything calibration.json holds: the result, the recommendation, the steps, the settings."""
    best, knee, knee_step = search.best_step, search.knee, search.knee_step
    warnings = search.warnings()
    result: dict = {
        "endpoint": endpoint,
        "region": region,
        "started_at": started_at,
        "duration_s": None if duration_s is None else round(duration_s, 1),
        "stop_reason": search.stop_reason,
        "stop_text": STOP_TEXT.get(search.stop_reason, str(search.stop_reason)),
        "stop_detail": search.stop_detail,
        "max_sustainable_rps": round(best.rps, 3) if best else None,
        "max_rps_per_instance": None,
        "recommended_invocations_per_instance": None,
        "instances": None,
        "instances_source": instances.source,
        "best_step": best.index if best else None,
        "knee": None,
        "recommendation": None,
    }
    if knee is not None:
        result["knee"] = {
            "users": knee.users,
            "rps": round(knee.rps, 3),
            "bracket": list(knee.bracket),
            "step": knee_step.index,
        }
        if search.settings.by_rate:  # the bracket is of rates; "users" is the rate offered at the knee
            result["knee"]["rate"] = knee.users
    if best is not None:
        loads, missing = [], []
        for identity, traffic in sorted(best.window.names.items()):
            variant = identity.target if identity.target != UNKNOWN else None
            if variant is None or not traffic.requests:
                continue
            count = instances.of(variant)
            if count is None:
                missing.append(variant)
                continue
            at_knee = knee_step.window.names.get(identity) if knee_step else None
            concurrency = (
                at_knee.rps * at_knee.histogram.mean / 1000 if at_knee and at_knee.histogram.count else None
            )
            loads.append(policies.VariantLoad(variant, count, traffic.rps, concurrency))
        if missing:
            warnings.append(
                f"no instance count for variant(s) {', '.join(missing)} ({instances.source}): "
                "they are left out of the per-variant recommendation"
            )
        total_instances = (
            sum(load.instances for load in loads)
            or instances.each
            or (sum(instances.per_variant.values()) if instances.per_variant else 0)
        )
        if total_instances and endpoint:
            recommendation = policies.recommend(
                endpoint, best.rps, total_instances, loads, safety_factor, region, component
            )
            result.update(
                instances=total_instances,
                max_rps_per_instance=recommendation["max_rps_per_instance"],
                recommended_invocations_per_instance=recommendation["recommended_invocations_per_instance"],
                recommendation=recommendation,
            )
            if knee is not None and not search.settings.by_rate:
                result["knee"]["concurrency_per_instance"] = round(knee.users / total_instances, 2)
    result["warnings"] = warnings
    result["slo"] = [
        {
            "text": c.text,
            "metric": c.metric,
            "name": c.name,
            "op": c.op,
            "threshold_ms": c.threshold if c.is_latency else None,
        }
        for c in search.settings.slos
    ]
    result["settings"] = {
        **search.settings.as_dict(),
        "safety_factor": safety_factor,
        "instances": instances.per_variant or instances.each,
        **(settings or {}),
    }
    result["steps"] = [step.as_dict() for step in search.steps]
    result["llm"] = _llm_summary(search, knee, total_instances if best is not None else 0, component)
    return result


def _llm_summary(search: Search, knee: Knee | None, instances: int, component: bool) -> dict | None:
    """LLM endpoints: the serving trade-off curve (total output tokens/s against tokens/s per user, one
    point per good step) and the concurrency target per instance or copy at the knee."""
    steps = [s for s in search.steps if s.window.total.output_tokens]
    if not steps:
        return None
    curve = sorted(
        (
            {
                "users": s.users,
                "output_tokens_per_s": round(s.window.total.output_tps, 1),
                "per_user_tokens_per_s": round(s.window.total.output_tps / s.users, 2),
                "good": s.good,
            }
            for s in steps
        ),
        key=lambda point: point["users"],
    )
    out: dict = {
        "curve": curve,
        "metric": policies.COMPONENT_CONCURRENCY_METRIC if component else policies.CONCURRENCY_METRIC,
        "knee_users": knee.users if knee else None,
    }
    if knee is not None and instances:
        out["knee_concurrency_per_copy" if component else "knee_concurrency_per_instance"] = round(
            knee.users / instances, 2
        )
    return out
