"""The end-of-test summary the master (or local runner) prints: one row per variant (requests,
failures by type, RPS, p50/p95/p99; TTFB and parts/s for response streams), the generator's
health (each worker's highest CPU and event-loop lag over its 3-second report intervals: above 90%
CPU, or a lag past a tenth of the median latency, its own queueing is in the latencies), the
variants compared with confidence intervals and the traffic split (:mod:`.ab`), and where the HTML
report is.

Percentiles come from the merged measurements (1% relative error, exact across workers).
"""

from __future__ import annotations

import os
import time
from typing import Any

from smload.measure.health import generator_busy
from smload.record import APIS, GOODPUT, ITL, OUTPUT_TOKENS, PER_PART, TOKEN_SOURCES, TPOT, TTFB, TTFT

from . import arrivals

QUANTILES = (0.50, 0.95, 0.99)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def render(run: Any) -> str:
    stats = run.runner.stats
    rows_of = sorted(
        ((identity, s) for identity, s in run.measurements.test().items() if identity.api in APIS),
        key=lambda item: (item[0].name, item[0].api),
    )
    if not rows_of:
        return ""
    header = ["variant", "requests", "failures", "RPS", "p50 ms", "p95 ms", "p99 ms"]
    streaming = any(TTFB in s.timings for _i, s in rows_of)
    if streaming:
        header += ["TTFB p50", "parts/s"]
    rows, notes, medians = [], [], []
    for identity, s in rows_of:
        entry = stats.entries.get((identity.name, identity.api))
        rps = entry.total_rps if entry else 0.0
        row = [identity.name, str(s.requests), str(s.failure_count), f"{rps:.1f}"]
        h = s.histogram
        quantiles = [h.quantile(q) for q in QUANTILES]
        medians += [quantiles[0]] if h.count else []
        row += [_ms(q) for q in quantiles]
        if streaming:
            ttfb, per_part = s.timings.get(TTFB), s.timings.get(PER_PART)
            row.append(_ms(ttfb.quantile(0.5)) if ttfb and ttfb.count else "-")
            row.append(f"{1000 / per_part.mean:.1f}" if per_part and per_part.mean else "-")
        rows.append(row)
        if s.failures:
            by_type = sorted(s.failures.items(), key=lambda kv: -kv[1])
            notes.append(f"  {identity.name}: " + ", ".join(f"{kind}={n}" for kind, n in by_type))
    total_requests = sum(s.requests for _i, s in rows_of)
    total_failures = sum(s.failure_count for _i, s in rows_of)
    duration = (stats.last_request_timestamp or 0) - (stats.start_time or 0)
    total_rps = total_requests / duration if duration > 0 else 0.0
    rows.append(
        ["total", str(total_requests), str(total_failures), f"{total_rps:.1f}"] + [""] * (len(header) - 4)
    )

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = ["", "=== SageMaker load test summary ==="]
    out += [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows[:-1]] + [line(["-" * w for w in widths]), line(rows[-1])]
    if notes:
        out += ["failures by type:", *notes]
    out.append("percentiles: smload histograms, 1% accuracy; time to last byte")
    out += _llm_lines(run, rows_of)
    abandoned = run.measurements.abandoned_test
    if abandoned:
        out.append(
            f"abandoned: {abandoned} requests, neither successes nor failures: in flight {run.drain_timeout:g} s "
            "after the test ended (--drain-timeout), or timed out while the generator itself stood still"
        )
    if run.analysis is not None:
        out += run.analysis.summary_lines()
    offered = arrivals.figures(run)
    if offered is not None:
        out += arrivals.summary_lines(offered)
    out += _health_lines(run, min(medians, default=0.0))  # the fastest variant: the most sensitive
    out += [
        f"generator stalled: {process} stood still for {seconds:.1f} s; timeouts it caused are counted as "
        "abandoned, not as the endpoint's"
        for process, seconds in sorted(stalls(run).items())
    ]
    html = getattr(run.environment.parsed_options, "html_file", None)
    if html:
        out.append(f"HTML report: {os.path.abspath(html)}")
    return "\n".join(out) + "\n"


def _llm_lines(run: Any, rows_of: list) -> list[str]:
    """The token table of an LLM test: TTFT, ITL and TPOT percentiles, tokens/s in total and per user,
    goodput; and how the tokens were counted."""
    llm_rows = [(identity, s) for identity, s in rows_of if OUTPUT_TOKENS in s.counts]
    if not llm_rows:
        return []
    entries = run.runner.stats.entries
    users = max([n for _t, n in run.users] or [0]) or 1
    header = [
        "name",
        "TTFT p50",
        "TTFT p99",
        "ITL p50",
        "ITL p99",
        "TPOT p50",
        "TPOT p99",
        "out tok/s",
        "per user",
        "goodput",
    ]
    rows, sources = [], {}
    for identity, s in llm_rows:
        entry = entries.get((identity.name, identity.api))
        rps = entry.total_rps if entry else 0.0
        seconds = s.requests / rps if rps else 0.0
        tps = s.counts[OUTPUT_TOKENS] / seconds if seconds else 0.0
        row = [identity.name]
        for kind in (TTFT, ITL, TPOT):
            h = s.timings.get(kind)
            row += [_ms(h.quantile(q)) if h and h.count else "-" for q in (0.5, 0.99)]
        row += [f"{tps:,.0f}", f"{tps / users:,.1f}"]
        good = s.counts.get(GOODPUT)
        row.append(f"{good / s.requests:.1%}" if good is not None and s.requests else "-")
        rows.append(row)
        for key, what in TOKEN_SOURCES.items():
            if s.counts.get(key):
                sources[what] = sources.get(what, 0) + s.counts[key]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    goodput = getattr(run.endpoint.llm, "goodput", None) if run.endpoint and run.endpoint.llm else None
    out = [
        "",
        "LLM tokens (ms; per user: output tokens/s / users)",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(r) for r in rows]
    counted = ", ".join(f"{what} ({n} requests)" for what, n in sources.items())
    out.append(
        f"tokens counted by: {counted}"
        + (
            ""
            if "usage" in sources
            else "; no usage in the answers: give --tokenizer for exact counts"
            if "chunks" in sources
            else ""
        )
    )
    if goodput is not None:
        out.append(f"goodput: requests that succeeded and met {goodput.text}")
    return out


def health_figures(run: Any) -> dict[str, tuple[float | None, float | None]]:
    """Per process: highest CPU % and loop lag (ms) once all users ran (the ramp-up, users starting
    and connections opening, is no steady state), else over the whole test."""
    samples = run.measurements.health
    now = time.time()
    for since in (run.steady_at, run.started_at):
        figures = {p: f for p, f in samples.by_process(since or now, now).items() if f != (None, None)}
        if figures:
            return figures
    return {}


def _health_lines(run: Any, median_ms: float) -> list[str]:
    runner = run.runner
    figures = {_process_name(run, process): f for process, f in health_figures(run).items()}
    warned = bool(
        getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False)
    )
    if not figures and not warned:
        return []
    parts = [
        ", ".join(
            filter(
                None,
                [
                    f"{process} CPU {cpu:.0f}%" if cpu is not None else process,
                    f"loop lag {lag:.1f} ms" if lag is not None else None,
                ],
            )
        )
        for process, (cpu, lag) in sorted(figures.items())
    ]
    busy = {process: generator_busy(cpu, lag, median_ms) for process, (cpu, lag) in figures.items()}
    busy = {process: why for process, why in busy.items() if why}
    if busy or warned:
        reasons = (
            "; ".join(f"{process}: {why}" for process, why in sorted(busy.items())) or "Locust's CPU warning"
        )
        return [
            f"generator health: WARNING ({reasons}): the latencies include the load generator's own "
            "queueing: add workers. Highest: " + "; ".join(parts)
        ]
    return ["generator health: OK, highest: " + "; ".join(parts)]


def stalls(run: Any) -> dict[str, float]:
    """Per process, the seconds it stood still during the test (its probe's stalled time)."""
    return {
        _process_name(run, process): samples[-1][1][3]
        for process, samples in run.measurements.health.series.items()
        if samples and samples[-1][1][3] > 0
    }


def _process_name(run: Any, process: str) -> str:
    """``worker N`` (Locust's worker index) for a worker's id; ``local`` stays."""
    return f"worker {run.runner.get_worker_index(process)}" if run.role == "master" else process
