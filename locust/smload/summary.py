"""The end-of-test summary the master (or local runner) prints: one row per variant (requests,
failures by type, RPS, p50/p95/p99; TTFB and parts/s for response streams), the generator's
health (the highest CPU each worker reported: above 90% its own queueing is in the latencies),
and where the HTML report is.

Percentiles come from ``smload.exporter.latency.test_histograms`` (1% relative error, merged from
all workers) when the exporter is there, else from Locust's stats (rounded to 2 significant digits).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from locust.runners import CPU_WARNING_THRESHOLD, MasterRunner

from .client import PER_PART_SUFFIX, TTFB_SUFFIX, is_invocation_entry

OPERATIONS = ("InvokeEndpoint", "InvokeEndpointWithResponseStream", "HTTP")
QUANTILES = (0.50, 0.95, 0.99)


class _Health:
    """Highest CPU per process since the test started."""

    def __init__(self) -> None:
        self.started = time.time()
        self.max_cpu: dict[str, float] = {}

    def saw(self, process: str, cpu: float) -> None:
        if cpu > self.max_cpu.get(process, -1.0):
            self.max_cpu[process] = cpu


_health: dict[int, _Health] = {}


def _of(environment: Any) -> _Health:
    return _health.setdefault(id(environment), _Health())


def track_generator_health(environment: Any) -> None:
    """Listen to the CPU figures Locust already gathers: the workers' heartbeats (on the master)
    and this process's own usage monitor."""
    runner = environment.runner

    def on_heartbeat(client_id: str, **_kwargs: Any) -> None:
        node = runner.clients.get(client_id) if isinstance(runner, MasterRunner) else None
        if node is not None:
            _of(environment).saw(f"worker {runner.get_worker_index(client_id)}", float(node.cpu_usage))

    def on_usage(cpu_usage: float, **_kwargs: Any) -> None:
        _of(environment).saw("master" if isinstance(runner, MasterRunner) else "local", float(cpu_usage))

    environment.events.heartbeat_sent.add_listener(on_heartbeat)
    environment.events.usage_monitor.add_listener(on_usage)


def test_started(environment: Any) -> None:
    _health[id(environment)] = _Health()


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
    if not any(max_cpu.values()) and not warned:
        return ["generator health: no CPU sample yet (Locust measures every 5 s)"]
    parts = [f"{process} {cpu:.0f}%" for process, cpu in sorted(max_cpu.items())]
    hot = [process for process, cpu in max_cpu.items() if cpu > CPU_WARNING_THRESHOLD]
    if hot or warned:
        return [
            f"generator health: WARNING: CPU above {CPU_WARNING_THRESHOLD}% ({', '.join(sorted(hot)) or 'a worker'}); "
            "latencies include the load generator's own queueing: add workers. Highest CPU: " + ", ".join(parts)
        ]
    return ["generator health: OK, highest CPU: " + ", ".join(parts)]
