"""What a test's measurements say against its checks, and the exit code that follows.

Exit codes (:mod:`smload.exit_codes`): **3** when a check fails, or a calibration found no
sustainable step. With checks given and all passing the run exits **0**, even if some requests
failed: the checks say what is acceptable (``error_rate<1%``), where Locust alone exits **1** on
any failed request. An exception in user code still gives Locust's 1, and an exit code another part
already set (2 for bad options) is never lowered. **4** when the verdict stands on partial data:
the run was interrupted before its run time was over, or a worker went silent (its requests are
missing from the counts): whatever the checks said, the run did not show what it was meant to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from smload import exit_codes
from smload.measure.histogram import Histogram
from smload.record import GOODPUT, ITL, OUTPUT_TOKENS, SCHEDULE_LAG, TPOT, TTFT, Identity
from smload.results import checks
from smload.results.checks import Check, Observed, OpenLoop, Result

from . import arrivals

console = logging.getLogger("locust.stats_logger")  # Locust's own plain stdout logger for tables


def observer(run: Any) -> Callable[[str | None], Observed | None]:
    """``observe(name)`` for :func:`smload.results.checks.evaluate`: counts and latencies from the
    merged measurements, throughput from Locust's stats; None for a name no request had. All
    requests (no name) is every request of the test."""
    series = run.measurements.test()
    entries = run.runner.stats.entries
    endpoint = run.endpoint
    goodput_given = bool(endpoint and endpoint.llm and endpoint.llm.goodput)
    offered = arrivals.figures(run)
    open_loop = OpenLoop(offered.achieved_rate, offered.arrivals, offered.dropped) if offered else None

    def gather(selected: Callable[[Identity], bool]) -> Observed | None:
        chosen = [(identity, s) for identity, s in series.items() if selected(identity)]
        if not chosen:
            return None
        histogram = Histogram()
        timings: dict[str, Histogram] = {}
        output_tokens, good = 0, None
        for _identity, s in chosen:
            if s.timings:
                histogram.merge(s.histogram)
            for kind in (TTFT, ITL, TPOT, SCHEDULE_LAG):
                if kind in s.timings:
                    timings.setdefault(kind, Histogram()).merge(s.timings[kind])
            output_tokens += s.counts.get(OUTPUT_TOKENS, 0)
            if GOODPUT in s.counts:
                good = (good or 0) + s.counts[GOODPUT]
        if good is None and goodput_given:
            good = 0
        rps = sum(e.total_rps for identity, _s in chosen if (e := entries.get((identity.name, identity.api))))
        return Observed(
            histogram,
            sum(s.requests for _i, s in chosen),
            sum(s.failure_count for _i, s in chosen),
            rps,
            timings,
            output_tokens,
            good,
            open_loop,
        )

    def observe(name: str | None) -> Observed | None:
        if name is None:
            return gather(lambda _identity: True) or Observed(Histogram(), 0, 0, 0.0, open_loop=open_loop)
        return gather(lambda identity: identity.name == name)

    return observe


def evaluate(run: Any, wanted: tuple[Check, ...]) -> list[Result]:
    return checks.evaluate(wanted, observer(run)) if wanted else []


def exit_code(run: Any) -> int | None:
    """The process exit code once the test ended (None: Locust decides, as without our plugin)."""
    environment = run.environment
    code = environment.process_exit_code
    shape = run.calibration
    if shape is not None and shape.completed:
        # its failed requests are measurements, not errors: Locust alone would exit 1 after an error-rate stop
        found = shape.summary is not None and shape.summary["max_sustainable_rps"] is not None
        code = max(code or 0, exit_codes.OK if found else exit_codes.CHECK_FAILED)
    wanted = run.settings.get("verdict")
    if wanted and wanted.checks:
        code = checks.exit_code(run.results, code, bool(run.runner.exceptions))
    if run.incomplete():
        code = max(code or 0, exit_codes.INTERRUPTED)
    return code


def print_checks(results: list[Result], exit_code: int, incomplete: list[str]) -> None:
    """The pass/fail table, after Locust's own statistics: the last thing a CI log shows."""
    if not results and not incomplete:
        return
    console.info("")
    if results:
        console.info("=== Checks ===" + (" (on partial data)" if incomplete else ""))
        for line in checks.table(results):
            console.info(line)
    for reason in incomplete:
        console.info(f"incomplete: {reason}")
    why = {
        exit_codes.CHECK_FAILED: " (a check failed)",
        exit_codes.INTERRUPTED: " (partial data: the run is incomplete)",
    }
    console.info(f"exit code {exit_code}{why.get(exit_code, '')}")
