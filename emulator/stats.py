"""Ground truth: exact counts per endpoint, variant, status and error type, and server-side latency
(receipt of the whole request to the last byte written, queue wait included) in a 1%-accurate
:class:`smload.measure.histogram.Histogram`; the open-loop truth: arrivals per second since the reset
and the coefficient of variation of the gaps between them (a request reaching a variant arrives when
the whole of it has been received). Served as JSON (``/_emulator/stats``) and in the Prometheus text
format (``/metrics``), both built from the same counters."""

from __future__ import annotations

import time
from bisect import bisect_left

from smload.measure.histogram import Histogram

UNKNOWN = "unknown"  # the variant of a request that reached none and named none
# The endpoint or variant label of a name the configuration does not have. Every such name is counted
# under this one label: a client naming endless endpoints or variants must not grow the stats (and
# /metrics) without bound. No SageMaker name can contain parentheses, so it never meets a real one.
UNCONFIGURED = "(unknown)"
DROPPED = "dropped"  # the status of a request whose connection was closed without an answer
MAX_SECONDS = 86_400  # arrivals per second are kept for the first day after a reset

# Prometheus histogram buckets, seconds (exact counts: each request is placed by bisect, not by sketch).
BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class VariantStats:
    __slots__ = (
        "requests",
        "status",
        "errors",
        "latency",
        "model_latency",
        "buckets",
        "seconds_sum",
        "seconds_count",
        "in_flight",
        "queued",
        "slots",
        "llm",
        "per_second",
        "last_arrival",
        "gaps",
        "gap_mean",
        "gap_m2",
        "instances",
        "scaling",
    )

    def __init__(self, slots: int = 0, instances: int = 0) -> None:
        self.slots = slots  # capacity (instances x concurrency); 0 for a variant that does not exist
        self.instances = instances  # as configured (an autoscaled variant's count now: scaling.instances)
        self.in_flight = 0  # received, not yet answered (queued or in a slot): live, never reset
        self.queued = 0
        self.llm = None  # an LLM variant's token-level truth (llm_stats.LLMStats): its own JSON and families
        self.scaling = None  # an autoscaled variant's scaler (autoscaling.EmulatedScaling)
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.status: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = Histogram()  # 200s only, ms
        self.model_latency = Histogram()  # 200s only, ms: time in a slot (what the model took)
        self.buckets = [0] * (len(BUCKETS_S) + 1)  # every answered request, by duration
        self.seconds_sum = 0.0
        self.seconds_count = 0
        if self.llm is not None:
            self.llm.reset()
        self.per_second: list[int] = []  # arrivals in each whole second since the reset (the first day)
        self.last_arrival: float | None = None
        self.gaps = 0  # inter-arrival gaps: count, mean and sum of squared deviations (Welford)
        self.gap_mean = 0.0
        self.gap_m2 = 0.0

    def arrived(self, since_reset_s: float) -> None:
        second = int(since_reset_s) if since_reset_s > 0 else 0
        counts = self.per_second
        if second >= MAX_SECONDS:  # bounded: the gaps still count, the per-second series stops
            second = -1
        elif second >= len(counts):
            counts.extend([0] * (second + 1 - len(counts)))
        if second >= 0:
            counts[second] += 1
        last, self.last_arrival = self.last_arrival, since_reset_s
        if last is not None:
            gap = since_reset_s - last
            self.gaps += 1
            delta = gap - self.gap_mean
            self.gap_mean += delta / self.gaps
            self.gap_m2 += delta * (gap - self.gap_mean)

    @property
    def interarrival_cv(self) -> float | None:
        if self.gaps < 2 or self.gap_mean <= 0:
            return None
        return (self.gap_m2 / (self.gaps - 1)) ** 0.5 / self.gap_mean

    def answered(self, status: str, error: str | None, seconds: float) -> None:
        counts = self.status
        counts[status] = counts.get(status, 0) + 1
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
        self.buckets[bisect_left(BUCKETS_S, seconds)] += 1
        self.seconds_sum += seconds
        self.seconds_count += 1
        if self.scaling is not None:
            self.scaling.answered(error, seconds, status == "200")

    @property
    def instances_now(self) -> int:
        return self.scaling.instances if self.scaling is not None else self.instances

    @property
    def slots_now(self) -> int:
        return self.slots if self.scaling is None else self.scaling.instances * self.scaling.concurrency

    def to_json(self) -> dict:
        out = {
            "requests": self.requests,
            "status": dict(self.status),
            "errors": dict(self.errors),
            "latency_ms": summary(self.latency),
        }
        out["model_latency_ms"] = summary(self.model_latency)
        cv = self.interarrival_cv
        out["arrivals"] = {
            "per_second": list(self.per_second),
            "interarrival_cv": None if cv is None else round(cv, 4),
        }
        if self.llm is not None:
            out["llm"] = self.llm.to_json()
        if self.scaling is not None:
            out["instances"] = self.scaling.instances
            out["scaling_events"] = self.scaling.events_json()
        return out


def summary(h: Histogram) -> dict:
    return {
        "count": h.count,
        "mean": round(h.mean, 3),
        "p50": round(h.quantile(0.5), 3),
        "p90": round(h.quantile(0.9), 3),
        "p95": round(h.quantile(0.95), 3),
        "p99": round(h.quantile(0.99), 3),
        "max": round(h.max, 3),
    }


class Stats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.reset_at = self.started
        self.endpoints: dict[str, dict[str, VariantStats]] = {}
        self.components: dict[str, dict[str, VariantStats]] = {}  # inference components, per endpoint
        # more metric families, each ``add(lines, rows)`` with rows of (label text, VariantStats): the
        # LLM families (llm_stats.prometheus), registered by the server so that this module needs them not
        self.families: list = []

    def variant(self, endpoint: str, variant: str, slots: int = 0, instances: int = 0) -> VariantStats:
        variants = self.endpoints.setdefault(endpoint, {})
        vs = variants.get(variant)
        if vs is None:
            vs = variants[variant] = VariantStats(slots, instances)
        return vs

    def component(self, endpoint: str, component: str, slots: int = 0, instances: int = 0) -> VariantStats:
        self.endpoints.setdefault(endpoint, {})
        components = self.components.setdefault(endpoint, {})
        cs = components.get(component)
        if cs is None:
            cs = components[component] = VariantStats(slots, instances)
        return cs

    def reset(self) -> None:
        """Zero the configured variants; forget the rest (``unknown`` and ``(unknown)`` come back
        when a request needs them). Only configured variants (``slots`` > 0) hold requests in flight."""
        self.reset_at = time.monotonic()
        for group in (self.components, self.endpoints):
            for endpoint, variants in list(group.items()):
                for name, vs in list(variants.items()):
                    if vs.slots:
                        vs.reset()
                    else:
                        del variants[name]
                if not variants and not self.components.get(endpoint):
                    del group[endpoint]

    def to_json(self) -> dict:
        now = time.monotonic()
        endpoints = {}
        for name, variants in self.endpoints.items():
            per_variant = {v: vs.to_json() for v, vs in variants.items()}
            per_component = {c: cs.to_json() for c, cs in self.components.get(name, {}).items()}
            endpoints[name] = {
                "requests": sum(v["requests"] for v in (*per_variant.values(), *per_component.values())),
                "variants": per_variant,
            }
            if per_component:
                endpoints[name]["inference_components"] = per_component
        return {
            "uptime_s": round(now - self.started, 3),
            "since_reset_s": round(now - self.reset_at, 3),
            "requests": sum(e["requests"] for e in endpoints.values()),
            "endpoints": endpoints,
        }

    def requests_json(self) -> dict:
        """``GET /_emulator/requests``: each LLM variant's and component's per-request truth
        (llm_stats.LLMStats.journal_json), shaped like ``to_json``'s endpoints."""
        endpoints: dict = {}
        for group, key in ((self.endpoints, "variants"), (self.components, "inference_components")):
            for name, targets in group.items():
                for target, ts in targets.items():
                    if ts.llm is not None:
                        endpoints.setdefault(name, {}).setdefault(key, {})[target] = ts.llm.journal_json()
        return {"endpoints": endpoints}

    def prometheus(self) -> str:
        """The Prometheus text exposition (version 0.0.4) of every counter."""
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        # An inference component's series carry inference_component="..." where a variant's carry variant="...".
        rows = [
            (f'endpoint="{_esc(e)}",variant="{_esc(v)}"', vs)
            for e, variants in self.endpoints.items()
            for v, vs in variants.items()
        ]
        rows += [
            (f'endpoint="{_esc(e)}",inference_component="{_esc(c)}"', cs)
            for e, components in self.components.items()
            for c, cs in components.items()
        ]
        family(
            "sagemaker_emulator_requests_total",
            "counter",
            "Requests answered, by endpoint, variant and HTTP status (dropped: closed without an answer).",
        )
        for labels, vs in rows:
            for status, n in sorted(vs.status.items()):
                lines.append(f'sagemaker_emulator_requests_total{{{labels},status="{status}"}} {n}')
        family(
            "sagemaker_emulator_errors_total",
            "counter",
            "Failed requests by error type, as the load generator classifies them.",
        )
        for labels, vs in rows:
            for error, n in sorted(vs.errors.items()):
                lines.append(f'sagemaker_emulator_errors_total{{{labels},error_type="{error}"}} {n}')
        family(
            "sagemaker_emulator_request_duration_seconds",
            "histogram",
            "Server-side duration of every answered request, from receipt to the last byte (queue wait included).",
        )
        for labels, vs in rows:
            running = 0
            for bound, n in zip(BUCKETS_S, vs.buckets[:-1], strict=True):
                running += n
                lines.append(
                    f'sagemaker_emulator_request_duration_seconds_bucket{{{labels},le="{bound}"}} {running}'
                )
            lines.append(
                f'sagemaker_emulator_request_duration_seconds_bucket{{{labels},le="+Inf"}} {vs.seconds_count}'
            )
            lines.append(f"sagemaker_emulator_request_duration_seconds_sum{{{labels}}} {vs.seconds_sum!r}")
            lines.append(f"sagemaker_emulator_request_duration_seconds_count{{{labels}}} {vs.seconds_count}")
        family(
            "sagemaker_emulator_in_flight",
            "gauge",
            "Requests received and not yet answered (queued or being served).",
        )
        for labels, vs in rows:
            lines.append(f"sagemaker_emulator_in_flight{{{labels}}} {vs.in_flight}")
        family("sagemaker_emulator_queue_depth", "gauge", "Requests waiting for a free slot.")
        for labels, vs in rows:
            lines.append(f"sagemaker_emulator_queue_depth{{{labels}}} {vs.queued}")
        family(
            "sagemaker_emulator_capacity_slots",
            "gauge",
            "Concurrent requests a variant serves (instances x concurrency; an LLM's: instances x max_batch).",
        )
        for labels, vs in rows:
            if vs.slots:
                lines.append(f"sagemaker_emulator_capacity_slots{{{labels}}} {vs.slots_now}")
        family(
            "sagemaker_emulator_instances",
            "gauge",
            "Instances (or inference-component copies) taking traffic; emulated autoscaling changes it.",
        )
        for labels, vs in rows:
            if vs.slots:
                lines.append(f"sagemaker_emulator_instances{{{labels}}} {vs.instances_now}")
        family(
            "sagemaker_emulator_scaling_events_total",
            "counter",
            "Scaling activities started by emulated autoscaling, by direction (out: more instances, in: fewer).",
        )
        for labels, vs in rows:
            if vs.slots:
                outs, ins = (
                    (vs.scaling.scale_outs, vs.scaling.scale_ins) if vs.scaling is not None else (0, 0)
                )
                lines.append(f'sagemaker_emulator_scaling_events_total{{{labels},direction="out"}} {outs}')
                lines.append(f'sagemaker_emulator_scaling_events_total{{{labels},direction="in"}} {ins}')
        for add in self.families:
            add(lines, rows)
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
