"""Calibration inside Locust: ``--calibrate`` turns any run of the bundled locustfile into a step
load driven by the master (or the local runner), identical on a laptop (``--processes N``) and in
the Helm chart's job mode. :mod:`.search` decides the steps; this module runs them and
measures each one.

How a step is measured (the master only sees what the workers report, every ~3 s):

* Throughput and errors come from Locust's per-second request counters (``num_reqs_per_sec``,
  keyed by the second each request *completed* on its worker, merged on the master), summed over
  the whole seconds ``[a, b)``: ``a`` = step start + warm-up, ``b`` = ``a`` + step time. The step
  ends only once every worker has reported after ``b``, so these seconds are complete: the
  report lag costs time, never accuracy.
* Latency percentiles come from the merged histograms (``smload.measure``), as the difference of two
  snapshots: one taken once every worker has reported after ``a`` (so that nothing of the warm-up
  is in it), one at the step's end. Only this step's users are running in between.
* Load generator health: the busiest process's CPU and event-loop lag over the window
  (:mod:`smload.measure.health`).

By rate (``--mode rate``) the shape keeps the open-loop executor pool (``--max-in-flight`` users)
and hands each step's rate to the TestRun (``on_rate``: split over the workers, constant arrivals);
the arrivals dropped in a window are the difference of the two snapshots too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from locust import LoadTestShape
from locust.runners import STATE_MISSING, MasterRunner

from smload.invoke import control_plane
from smload.invoke.options import Settings as EndpointSettings
from smload.measure.histogram import Histogram
from smload.measure.store import Measurements
from smload.record import DROPPED, GOODPUT, ITL, OUTPUT_TOKENS, TPOT, TTFT, Identity
from smload.results import reports
from smload.usage import UsageError

from . import search as calibration
from .options import Calibration
from .search import Instances, Search, Traffic, Window

logger = logging.getLogger("smload.calibration")
console = logging.getLogger("locust.stats_logger")

_LLM_KINDS = (TTFT, ITL, TPOT)
_LLM_COUNTS = (OUTPUT_TOKENS, GOODPUT)
REPORT_SLACK_S = 0.25  # a report must arrive this long after a boundary to cover every request before it
REPORT_WAIT_MAX_S = 15.0
DRAIN_MAX_S = 10.0  # by rate: the longest pause for an overloaded step's backlog  # a worker silent for longer is left out of the boundary wait (logged)


# --- the shape ------------------------------------------------------------------------------------


@dataclass
class _Mark:
    """A snapshot of the master's merged state at one instant."""

    histograms: dict[Identity, Histogram]
    errors: dict[tuple[Identity, str], int]  # (identity, error type) -> failures so far
    timings: dict[tuple[Identity, str], Histogram] = field(
        default_factory=dict
    )  # LLM kinds (ttft, tpot, ...)
    counts: dict[tuple[Identity, str], int] = field(default_factory=dict)  # output tokens, goodput
    dropped: int = 0  # by rate: arrivals dropped so far


@dataclass
class _Step:
    users: int
    started: float  # wall clock
    a: int  # the measured seconds [a, b)
    b: int
    first: _Mark | None = None
    resume_at: float | None = None  # by rate, after an overloaded step: no arrivals until the backlog drained


class CalibrationShape(LoadTestShape):
    """Runs :class:`smload.calibration.Search` step by step (``tick`` is called about once a second)."""

    abstract = False
    executors = 0  # by rate: the open-loop pool (set by the TestRun)
    on_rate: Any = None  # by rate: the TestRun's offer (split over the workers and sent)

    def __init__(
        self,
        calibration: Calibration,
        endpoint: EndpointSettings,
        instances: Instances,
        measurements: Measurements,
        runner: Any,
    ):
        super().__init__()
        self.calibration = calibration
        self.settings = calibration.search
        self.endpoint = endpoint
        self.instances = instances
        self.measurements = measurements
        self.runner = runner
        self.search = Search(self.settings)
        self.step: _Step | None = None
        self.health = measurements.health
        self.started_wall = time.time()
        self.summary: dict | None = None
        self.completed = False  # the search ran to one of its stop rules

    def reset_time(self) -> None:  # Locust calls this when the shape (re)starts
        super().reset_time()
        self.search = Search(self.settings)
        self.step = None
        self.summary = None
        self.completed = False
        self.started_wall = time.time()

    # --- tick --------------------------------------------------------------------------------

    def tick(self) -> tuple[int, float] | None:
        now = time.time()
        if self.summary is not None:
            return None
        step = self.step
        if step is None:
            return self._begin(self.search.next_users(), now)
        if not isinstance(self.runner, MasterRunner):
            self.health.add_local(self.measurements.probe)
        if step.first is None:
            if now >= step.a and self._reported_since(step.a, now):
                step.first = self._mark()
            return self._hold(step)
        if now >= step.b and self._reported_since(step.b, now):
            window = self._window(step, self._mark())
            recorded = self.search.record(window)
            self._log_step(recorded)
            drain = None
            if self.settings.by_rate and recorded.verdict == calibration.OVERLOADED:
                # its queue (at most the executors) would be in the next step's latencies: let it drain first
                drain = min(DRAIN_MAX_S, self.executors / max(1.0, window.total.rps))
            return self._begin(self.search.next_users(), now, drain)
        return self._hold(step)

    def _begin(self, users: int | None, now: float, drain: float | None = None) -> tuple[int, float] | None:
        if users is None:
            self.completed = True
            self.finish()
            return None
        a = math.ceil(now + (drain or 0.0) + self.settings.warmup_s)
        previous = self.step.users if self.step else 0
        self.step = _Step(users, now, a, a + math.ceil(self.settings.measure_s))
        if self.settings.by_rate:
            if drain:
                self.step.resume_at = now + drain
                self.on_rate(0.0)
            else:
                self.on_rate(float(users))
            return self.executors, float(self.executors)
        return users, float(max(1, abs(users - previous)))  # the whole step's users in one wave

    def _hold(self, step: _Step) -> tuple[int, float]:
        if self.settings.by_rate:
            if step.resume_at is not None and time.time() >= step.resume_at:
                step.resume_at = None
                self.on_rate(float(step.users))
            return self.executors, float(self.executors)
        return step.users, float(max(1, step.users))

    def _workers(self) -> list[Any]:
        runner = self.runner
        if isinstance(runner, MasterRunner):
            return [c for c in runner.clients.values() if c.state != STATE_MISSING]
        return []

    def _reported_since(self, boundary: float, now: float) -> bool:
        """Every worker has reported after ``boundary`` (a local runner records as it goes)."""
        last = self.measurements.last_report
        late = [w.id for w in self._workers() if last.get(w.id, 0) < boundary + REPORT_SLACK_S]
        if late and now - boundary > REPORT_WAIT_MAX_S:
            logger.warning(
                "no report from worker(s) %s for %.0f s: measuring without waiting for them",
                late,
                now - boundary,
            )
            return True
        return not late

    # --- measuring ---------------------------------------------------------------------------

    def _mark(self) -> _Mark:
        series = self.measurements.test()
        return _Mark(
            {key: s.histogram.copy() for key, s in series.items()},
            {(key, error): n for key, s in series.items() for error, n in s.failures.items()},
            {
                (key, kind): s.timings[kind].copy()
                for key, s in series.items()
                for kind in _LLM_KINDS
                if kind in s.timings
            },
            {
                (key, counter): s.counts[counter]
                for key, s in series.items()
                for counter in _LLM_COUNTS
                if counter in s.counts
            },
            self.measurements.test_arrivals().get(DROPPED, 0),
        )

    def _window(self, step: _Step, last: _Mark) -> Window:
        stats = self.runner.stats
        seconds = range(step.a, step.b)
        span = step.b - step.a
        first = step.first or _Mark({}, {})
        names: dict[Identity, Traffic] = {}
        for identity, histogram in sorted(last.histograms.items()):
            entry = stats.entries.get((identity.name, identity.api))
            requests = sum(entry.num_reqs_per_sec.get(t, 0) for t in seconds) if entry else 0
            failures = sum(entry.num_fail_per_sec.get(t, 0) for t in seconds) if entry else 0
            before = first.histograms.get(identity)
            window = histogram.since(before) if before is not None else histogram
            if requests or window.count:
                traffic = names[identity] = Traffic(requests, failures, requests / span, window)
                for kind in _LLM_KINDS:
                    timing = last.timings.get((identity, kind))
                    if timing is not None:
                        earlier = first.timings.get((identity, kind))
                        traffic.timings[kind] = timing.since(earlier) if earlier is not None else timing
                if (identity, OUTPUT_TOKENS) in last.counts:
                    # tokens of the requests completed between the two marks, scaled to the counted seconds
                    done = window.count or 1
                    tokens = last.counts[(identity, OUTPUT_TOKENS)] - first.counts.get(
                        (identity, OUTPUT_TOKENS), 0
                    )
                    traffic.output_tokens = round(tokens * requests / done) if window.count else 0
                    if (identity, GOODPUT) in last.counts:
                        good = last.counts[(identity, GOODPUT)] - first.counts.get((identity, GOODPUT), 0)
                        traffic.good = round(good * requests / done) if window.count else 0
        total = Traffic()
        for t in names.values():
            total.add(t)
        errors: dict[str, int] = {}
        for (_identity, error), count in last.errors.items():
            delta = count - first.errors.get((_identity, error), 0)
            if delta:
                errors[error] = errors.get(error, 0) + delta
        origin = self.started_wall
        cpu, lag = self.health.window(step.a, time.time())
        window = Window(
            step.users,
            step.started - origin,
            step.a - origin,
            step.b - origin,
            total,
            names,
            errors,
            cpu,
            lag,
        )
        if self.settings.by_rate:
            window.offered, window.dropped = float(step.users), last.dropped - first.dropped
        return window

    def _log_step(self, step: calibration.Step) -> None:
        w = step.window
        h = w.total.histogram
        p = {q: (f"{h.quantile(q / 100):.1f}" if h.count else "n/a") for q in (50, 99)}
        cpu = f"{w.cpu_percent:.0f}%" if w.cpu_percent is not None else "n/a"
        lag = f"{w.loop_lag_ms:.2f} ms" if w.loop_lag_ms is not None else "n/a"
        verdict = step.verdict if step.good else f"{step.verdict}: {'; '.join(step.reasons)}"
        tokens = ""
        if w.total.output_tokens:
            tpot = w.total.timings.get(TPOT)
            ttft = w.total.timings.get(TTFT)
            tokens = (
                f"{w.total.output_tps:,.0f} tokens/s ({w.total.output_tps / step.users:,.1f} per user), "
                + (f"TTFT p99 {ttft.quantile(0.99):.1f} ms, " if ttft and ttft.count else "")
                + (f"TPOT p99 {tpot.quantile(0.99):.2f} ms, " if tpot and tpot.count else "")
            )
        load = f"{step.users} req/s offered" if w.offered is not None else f"{step.users} users"
        console.info(
            f"calibration step {step.index} ({step.phase}): {load}, {w.total.rps:.1f} req/s, "
            f"{tokens}p50 {p[50]} ms, p99 {p[99]} ms, errors {w.total.error_rate:.2%}, "
            f"generator CPU {cpu}, loop lag {lag} -> {verdict}"
        )

    # --- the end -----------------------------------------------------------------------------

    def finish(self, detail: str | None = None) -> dict:
        """Summarize, print and write the results (once)."""
        if self.summary is not None:
            return self.summary
        if detail:
            self.search.stop(detail)
        self.summary = calibration.summarize(
            self.search,
            self.instances,
            self.calibration.safety_factor,
            self.endpoint.endpoint_name,
            region=self.endpoint.region,
            settings=self._run_settings(),
            started_at=reports.iso_utc(self.started_wall),
            duration_s=time.time() - self.started_wall,
            component=bool(self.endpoint.inference_component),
        )
        for line in summary_lines(self.summary):
            console.info(line)
        output = self.calibration.output
        if output:
            try:
                paths = reports.write_calibration(output, self.summary)
                console.info(f"calibration results: {', '.join(str(p) for p in paths[:2])}")
            except OSError as err:
                logger.error("--output: cannot write %s: %s", output, err)
        return self.summary

    def finish_at_quit(self) -> None:
        """The test ends (its end, Ctrl-C, the web UI's stop): keep what was measured."""
        if self.summary is None and self.search.steps:
            self.finish("the test was stopped before calibration finished")

    def _run_settings(self) -> dict:
        e = self.endpoint
        settings = {
            "endpoint_name": e.endpoint_name,
            "endpoint_url": e.endpoint_url,
            "region": e.region,
            "target_variant": e.target_variant,
            "client": e.client,
            "stream": e.stream,
        }
        settings = {key: value for key, value in settings.items() if value not in (None, "", False)}
        settings["workers"] = self.runner.worker_count if isinstance(self.runner, MasterRunner) else 0
        return settings


def summary_lines(summary: dict) -> list[str]:
    stop = summary["stop_text"]
    lines = [
        "",
        "=== Calibration ===",
        f"stopped: {stop}" + (f" ({summary['stop_detail']})" if summary["stop_detail"] else ""),
    ]
    if summary["max_sustainable_rps"] is None:
        lines.append("no sustainable throughput: no step met the SLO and the error limit")
    else:
        lines.append(f"max sustainable throughput: {summary['max_sustainable_rps']:.1f} req/s")
        if summary["instances"]:
            lines.append(
                f"instances: {summary['instances']} ({summary['instances_source']}); "
                f"per instance: {summary['max_rps_per_instance']:.1f} req/s"
            )
            lines.append(
                f"recommended SageMakerVariantInvocationsPerInstance: "
                f"{summary['recommended_invocations_per_instance']:.0f} per minute "
                f"(x safety factor {summary['settings']['safety_factor']} x 60)"
            )
    knee = summary["knee"]
    if knee and "rate" in knee:
        lines.append(
            f"knee: {knee['rate']} req/s offered ({knee['rps']:.1f} req/s completed), bracketed by "
            f"{knee['bracket'][0]} and {knee['bracket'][1]} req/s"
        )
    elif knee:
        lines.append(
            f"knee: {knee['users']} users ({knee['rps']:.1f} req/s), bracketed by {knee['bracket'][0]} and "
            f"{knee['bracket'][1]} users"
        )
    llm = summary.get("llm")
    if llm and llm.get("knee_users"):
        per = llm.get("knee_concurrency_per_copy", llm.get("knee_concurrency_per_instance"))
        unit = "copy" if "knee_concurrency_per_copy" in llm else "instance"
        if per is not None:
            lines.append(
                f"LLM: {llm['knee_users']} concurrent requests at the knee, {per:g} per {unit}: "
                f"target tracking on {llm['metric']} (policy in the recommendation)"
            )
    lines += [f"warning: {w}" for w in summary["warnings"]]
    return lines


def install(
    environment: Any,
    runner: Any,
    calibration: Calibration,
    endpoint: EndpointSettings,
    measurements: Measurements,
    session: Any,
) -> CalibrationShape:
    """Make ``--calibrate`` the environment's load shape; raises UsageError (before any load)."""
    options = environment.parsed_options
    if getattr(options, "reset_stats", False):
        raise UsageError(
            "--reset-stats", "cannot be used with --calibrate: each step is measured from the running totals"
        )
    if environment.shape_class is not None:
        raise UsageError(
            "--calibrate",
            f"the locustfile already has a load shape "
            f"({type(environment.shape_class).__name__}): remove it to calibrate",
        )
    if calibration.instances:
        instances = Instances("--instances", each=calibration.instances)
    else:
        counts = control_plane.describe_instances(
            session, endpoint.region, endpoint.endpoint_name, endpoint.endpoint_url
        )
        instances = Instances("DescribeEndpoint", per_variant=counts)
    if endpoint.llm is not None and calibration.search.slos:
        calibration = dataclasses.replace(
            calibration, search=dataclasses.replace(calibration.search, plateau_efficiency=0.0)
        )
    shape = CalibrationShape(calibration, endpoint, instances, measurements, runner)
    environment.shape_class = shape
    logger.info(
        "calibration: instances from %s%s",
        instances.source,
        f" ({instances.per_variant})" if instances.per_variant else f" ({instances.each} per variant)",
    )
    return shape
