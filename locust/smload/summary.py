"""The end-of-test summary the master (or local runner) prints: one row per variant (requests,
failures by type, RPS, p50/p95/p99; TTFB and parts/s for response streams), the generator's
health (each worker's highest CPU and event-loop lag over its 3-second report intervals: above 90%
CPU, or a lag past a tenth of the median latency, its own queueing is in the latencies), and where
the HTML report is.

Percentiles come from ``smload.exporter.latency.test_histograms`` (1% relative error, merged from
all workers) when the exporter is there, else from Locust's stats (rounded to 2 significant digits).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from locust.runners import MasterRunner, WorkerRunner

from . import calibration, generator_health
from .client import PER_PART_SUFFIX, TTFB_SUFFIX, is_invocation_entry

OPERATIONS = ("InvokeEndpoint", "InvokeEndpointWithResponseStream", "HTTP")
QUANTILES = (0.50, 0.95, 0.99)


class _Health:
    """When the current test started, and when all its users ran."""

    def __init__(self) -> None:
        self.started = time.time()
        self.steady: float | None = None  # when the users were all running (Locust's spawning_complete)

    def figures(self, samples: generator_health.Samples) -> dict[str, tuple[float | None, float | None]]:
        """Per process: highest CPU % and loop lag (ms) once all users ran (the ramp-up, users
        starting and connections opening, is no steady state), else over the whole test."""
        now = time.time()
        for since in (self.steady, self.started):
            figures = {p: f for p, f in samples.by_process(since or now, now).items() if f != (None, None)}
            if figures:
                return figures
        return {}


_health: dict[int, _Health] = {}


def _of(environment: Any) -> _Health:
    return _health.setdefault(id(environment), _Health())


def track_generator_health(environment: Any) -> None:
    """The workers' reports (every 3 s) are kept by :mod:`smload.generator_health`; a local runner
    adds its own totals when the test starts, when all users run and when it stops. Finer than
    Locust's own 5-second CPU samples, whose first reading comes 10 s into a run."""
    runner = environment.runner
    local = not isinstance(runner, (MasterRunner, WorkerRunner))

    def on_test_start(**_kwargs: Any) -> None:
        _health[id(environment)] = _Health()
        if local:
            generator_health.samples_of(environment).add_local()

    def on_spawning_complete(**_kwargs: Any) -> None:
        _of(environment).steady = time.time()
        if local:
            generator_health.samples_of(environment).add_local()

    def on_test_stop(**_kwargs: Any) -> None:
        if local:
            generator_health.samples_of(environment).add_local()

    environment.events.test_start.add_listener(on_test_start)
    environment.events.spawning_complete.add_listener(on_spawning_complete)
    environment.events.test_stop.add_listener(on_test_stop)


def _histograms(environment: Any) -> dict | None:
    latency = sys.modules.get("smload.exporter.latency")  # only when the locustfile enabled it
    if latency is None:
        return None
    try:
        return latency.test_histograms(environment)
    except RuntimeError:  # not attached to this environment: Locust's stats will do
        return None


def _quantiles(entry: Any, histogram: Any) -> list[float]:
    if histogram is not None and histogram.count:
        return [histogram.quantile(q) for q in QUANTILES]
    return [float(entry.get_response_time_percentile(q) or 0) for q in QUANTILES]


def _failures_by_type(stats: Any, method: str, name: str) -> str:
    counts: dict[str, int] = {}
    for error in stats.errors.values():
        if error.method == method and error.name == name:
            key = error.error if isinstance(error.error, str) else repr(error.error)
            counts[key] = counts.get(key, 0) + error.occurrences
    return ", ".join(f"{kind}={n}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def render(environment: Any) -> str:
    stats = environment.stats
    entries = sorted(
        (e for e in stats.entries.values() if e.method in OPERATIONS and is_invocation_entry(e.name)),
        key=lambda e: e.name,
    )
    if not entries:
        return ""
    histograms = _histograms(environment)
    header = ["variant", "requests", "failures", "RPS", "p50 ms", "p95 ms", "p99 ms"]
    streaming = any(stats.entries.get((e.name + TTFB_SUFFIX, e.method)) for e in entries)
    if streaming:
        header += ["TTFB p50", "parts/s"]
    rows, notes, medians = [], [], []
    for entry in entries:
        row = [entry.name, str(entry.num_requests), str(entry.num_failures), f"{entry.total_rps:.1f}"]
        quantiles = _quantiles(entry, (histograms or {}).get((entry.method, entry.name)))
        medians += [quantiles[0]] if entry.num_requests else []
        row += [_ms(q) for q in quantiles]
        if streaming:
            ttfb = stats.entries.get((entry.name + TTFB_SUFFIX, entry.method))
            per_part = stats.entries.get((entry.name + PER_PART_SUFFIX, entry.method))
            row.append(_ms(ttfb.get_response_time_percentile(0.5)) if ttfb and ttfb.num_requests else "-")
            row.append(f"{1000 / per_part.avg_response_time:.1f}" if per_part and per_part.avg_response_time else "-")
        rows.append(row)
        by_type = _failures_by_type(stats, entry.method, entry.name)
        if by_type:
            notes.append(f"  {entry.name}: {by_type}")
    total_requests = sum(e.num_requests for e in entries)
    total_failures = sum(e.num_failures for e in entries)
    duration = (stats.last_request_timestamp or 0) - (stats.start_time or 0)
    total_rps = total_requests / duration if duration > 0 else 0.0
    rows.append(["total", str(total_requests), str(total_failures), f"{total_rps:.1f}"] + [""] * (len(header) - 4))

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = ["", "=== SageMaker load test summary ==="]
    out += [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows[:-1]] + [line(["-" * w for w in widths]), line(rows[-1])]
    if notes:
        out += ["failures by type:", *notes]
    source = "smload histograms, 1% accuracy" if histograms else "Locust's stats, rounded to 2 significant digits"
    out.append(f"percentiles: {source}; time to last byte")
    out += _health_lines(environment, min(medians, default=0.0))  # the fastest variant: the most sensitive
    html = getattr(environment.parsed_options, "html_file", None)
    if html:
        out.append(f"HTML report: {os.path.abspath(html)}")
    return "\n".join(out) + "\n"


def _health_lines(environment: Any, median_ms: float) -> list[str]:
    runner = environment.runner
    by_id = _of(environment).figures(generator_health.samples_of(environment))
    figures = {_process_name(runner, process): f for process, f in by_id.items()}
    warned = bool(getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
    if not figures and not warned:
        return []
    parts = [", ".join(filter(None, [f"{process} CPU {cpu:.0f}%" if cpu is not None else process,
                                     f"loop lag {lag:.1f} ms" if lag is not None else None]))
             for process, (cpu, lag) in sorted(figures.items())]
    busy = {process: calibration.generator_busy(cpu, lag, median_ms) for process, (cpu, lag) in figures.items()}
    busy = {process: why for process, why in busy.items() if why}
    if busy or warned:
        reasons = "; ".join(f"{process}: {why}" for process, why in sorted(busy.items())) or "Locust's CPU warning"
        return [f"generator health: WARNING ({reasons}): the latencies include the load generator's own "
                "queueing: add workers. Highest: " + "; ".join(parts)]
    return ["generator health: OK, highest: " + "; ".join(parts)]


def _process_name(runner: Any, process: str) -> str:
    """``worker N`` (Locust's worker index) for a worker's id; ``local`` stays."""
    return f"worker {runner.get_worker_index(process)}" if isinstance(runner, MasterRunner) else process
