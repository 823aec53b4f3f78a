"""The end-of-test summary the master (or local runner) prints: one row per variant (requests,
failures by type, RPS, p50/p95/p99; TTFB and parts/s for response streams), the generator's
health (the highest CPU each worker reported over 3-second intervals: above 90% its own queueing
is in the latencies),
and where the HTML report is.

Percentiles come from ``smload.exporter.latency.test_histograms`` (1% relative error, merged from
all workers) when the exporter is there, else from Locust's stats (rounded to 2 significant digits).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import psutil
from locust.runners import CPU_WARNING_THRESHOLD, MasterRunner, WorkerRunner

from .client import PER_PART_SUFFIX, TTFB_SUFFIX, is_invocation_entry

OPERATIONS = ("InvokeEndpoint", "InvokeEndpointWithResponseStream", "HTTP")
QUANTILES = (0.50, 0.95, 0.99)


class _CpuMeter:
    """This process's CPU use (percent of one core) since the last reading."""

    MIN_INTERVAL_S = 1.0  # the extra reports when a test stops come ms apart: their % is noise

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.last = self._now()

    def _now(self) -> tuple[float, float]:
        times = self.process.cpu_times()
        return time.monotonic(), times.user + times.system

    def restart(self) -> None:
        self.last = self._now()

    def percent(self) -> float | None:
        """CPU % since the last reading, or None (and keep counting) when that was under a second ago."""
        (wall0, cpu0), (wall1, cpu1) = self.last, self._now()
        if wall1 - wall0 < self.MIN_INTERVAL_S:
            return None
        self.last = (wall1, cpu1)
        return 100.0 * (cpu1 - cpu0) / (wall1 - wall0)


class _Health:
    """Highest CPU per process since the test started."""

    def __init__(self) -> None:
        self.max_cpu: dict[str, float] = {}

    def saw(self, process: str, cpu: float) -> None:
        if cpu > self.max_cpu.get(process, -1.0):
            self.max_cpu[process] = cpu


_health: dict[int, _Health] = {}
REPORT_FIELD = "smload_cpu"  # our field in each worker report: its CPU % since its last report


def _of(environment: Any) -> _Health:
    return _health.setdefault(id(environment), _Health())


def track_generator_health(environment: Any) -> None:
    """Each worker adds its CPU use since its last report (every 3 s) to the report it sends the
    master; the master keeps the highest per worker. A local runner reads its own at the end.
    Finer than Locust's own 5-second samples, whose first reading comes 10 s into a run."""
    runner = environment.runner
    meter = _CpuMeter()

    def on_report_to_master(data: dict, **_kwargs: Any) -> None:
        cpu = meter.percent()
        if cpu is not None:
            data[REPORT_FIELD] = cpu

    def on_worker_report(client_id: str, data: dict, **_kwargs: Any) -> None:
        if REPORT_FIELD in data:
            _of(environment).saw(f"worker {runner.get_worker_index(client_id)}", float(data[REPORT_FIELD]))

    def on_test_start(**_kwargs: Any) -> None:
        _health[id(environment)] = _Health()
        meter.restart()  # the reading starts with the test

    def on_test_stop(**_kwargs: Any) -> None:
        if not isinstance(runner, (MasterRunner, WorkerRunner)):
            cpu = meter.percent()
            if cpu is not None:
                _of(environment).saw("local", cpu)

    if isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(on_report_to_master)
    elif isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(on_worker_report)
    environment.events.test_start.add_listener(on_test_start)
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
    rows, notes = [], []
    for entry in entries:
        row = [entry.name, str(entry.num_requests), str(entry.num_failures), f"{entry.total_rps:.1f}"]
        row += [_ms(q) for q in _quantiles(entry, (histograms or {}).get((entry.method, entry.name)))]
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
    out += _health_lines(environment)
    html = getattr(environment.parsed_options, "html_file", None)
    if html:
        out.append(f"HTML report: {os.path.abspath(html)}")
    return "\n".join(out) + "\n"


def _health_lines(environment: Any) -> list[str]:
    runner = environment.runner
    max_cpu = _of(environment).max_cpu
    warned = bool(getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
    if not max_cpu and not warned:
        return []
    parts = [f"{process} {cpu:.0f}%" for process, cpu in sorted(max_cpu.items())]
    hot = [process for process, cpu in max_cpu.items() if cpu > CPU_WARNING_THRESHOLD]
    if hot or warned:
        return [
            f"generator health: WARNING: CPU above {CPU_WARNING_THRESHOLD}% ({', '.join(sorted(hot)) or 'a worker'}); "
            "latencies include the load generator's own queueing: add workers. Highest CPU: " + ", ".join(parts)
        ]
    return ["generator health: OK, highest CPU: " + ", ".join(parts)]
