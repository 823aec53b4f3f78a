"""The end of every test, on the master (or the local runner): the ``--check`` pass/fail table and
exit code, and the run report (``--report DIR``).

Exit codes: **3** when a check fails. With checks given and all passing the run exits **0**, even if
some requests failed: the checks say what is acceptable (``error_rate<1%``), where Locust alone
exits **1** on any failed request. An exception in user code still gives Locust's 1, and an exit
code another part already set (2 for bad options) is never lowered.

When: checks are evaluated at Locust's ``quitting`` event, after the master has received the
workers' final reports and before Locust picks its exit code (``environment.process_exit_code``);
the table is printed at ``quit``, after Locust's own statistics, so the verdict is the last thing
a CI log shows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from locust import events
from locust.argument_parser import default_args_dict
from locust.runners import MasterRunner, WorkerRunner

from smload.exporter import latency  # at import time: it attaches to Locust's environment at init

from . import checks, reports
from .checks import Observed, Result
from .client import is_invocation_entry
from .histogram import Histogram
from .usage import UsageError, validator

EXIT_USAGE = 2

logger = logging.getLogger("smload.verdict")
console = logging.getLogger("locust.stats_logger")  # Locust's own plain stdout logger for tables


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group(
        "Checks and reports", "Pass/fail criteria and reports (sagemaker-loadtest). Each option is also a LOCUST_* variable."
    )
    check = group.add_argument(
        "--check", action="append", metavar="EXPR", env_var="LOCUST_CHECK",
        help="a pass/fail criterion evaluated when the test ends, e.g. \"p95<300ms\", \"p99[ab-test/variant-a]<0.5s\", "
             "\"error_rate<1%%\", \"rps>=100\" (repeatable; several in one value separated by ';'). "
             "Any failing check: exit code 3")
    report = group.add_argument(
        "--report", metavar="DIR", env_var="LOCUST_REPORT",
        help="write report.html (self-contained) and report.json into DIR when the test ends")
    for action in (check, report):  # Locust's web UI form shows an argument group's options only when marked
        action.include_in_web_ui = True


@validator
def check_checks_and_report(options: Any) -> None:
    checks.parse_all(getattr(options, "check", None))
    writable_directory("--report", getattr(options, "report", None))


def writable_directory(option: str, path: str | None) -> None:
    """A directory a report can be written to: existing and writable, or creatable."""
    if not path or not str(path).strip():
        return
    target = os.path.abspath(str(path))
    if os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(option, f"{path!r} is a file: give a directory")
    probe = target
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(option, f"cannot write to {probe!r}: choose a writable directory")


# --- what the checks and the report look at ---------------------------------------------------


def test_histograms(environment: Any) -> dict[tuple[str, str], Histogram]:
    """The exporter's latency histograms of the current test, merged from every worker (copies)."""
    return latency.test_histograms(environment)


def test_failures(environment: Any) -> dict[tuple[str, str], dict[str, int]]:
    """Failures per (request type, name) and classified error (``ModelError(500)``) of the current test."""
    return latency.test_failures(environment)


def observer(environment: Any):
    """``observe(name)`` for :func:`smload.checks.evaluate`: latencies from the merged histograms,
    counts and throughput from Locust's stats; None for a name no request had. All requests (no
    name) means the invocations: the extra entries of response streams (``... TTFB``) are not
    requests of their own, though a check may name them."""
    stats = environment.runner.stats
    histograms = test_histograms(environment)

    def gather(selected: Callable[[str], bool]) -> Observed | None:
        entries = [e for (name, _method), e in stats.entries.items() if selected(name)]
        named = [h for (_type, name), h in histograms.items() if selected(name)]
        if not entries and not named:
            return None
        histogram = Histogram()
        for h in named:
            histogram.merge(h)
        return Observed(histogram, sum(e.num_requests for e in entries), sum(e.num_failures for e in entries),
                        sum(e.total_rps for e in entries))

    def observe(name: str | None) -> Observed | None:
        if name is None:
            return gather(is_invocation_entry) or Observed(Histogram(), 0, 0, 0.0)
        return gather(lambda candidate: candidate == name)

    return observe


# --- the end of the test ------------------------------------------------------------------------

_results: dict[int, list[Result]] = {}


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    options = environment.parsed_options
    if options is None or runner is None or isinstance(runner, WorkerRunner):
        return
    try:
        wanted = checks.parse_all(getattr(options, "check", None))  # may come from the web UI form
    except UsageError as err:
        logger.error("%s", err)
        environment.process_exit_code = max(environment.process_exit_code or 0, EXIT_USAGE)
        return
    results = checks.evaluate(wanted, observer(environment)) if wanted else []
    _results[id(environment)] = results
    if wanted:
        environment.process_exit_code = checks.exit_code(results, environment.process_exit_code, bool(runner.exceptions))
    report_dir = getattr(options, "report", None)
    if report_dir and str(report_dir).strip():
        try:
            paths = reports.write_run(report_dir, run_report(environment, results))
            logger.info("run report: %s", os.path.abspath(str(paths[-1])))
        except OSError as err:
            logger.error("--report: cannot write %s: %s", report_dir, err)


@events.quit.add_listener
def _on_quit(exit_code: int, **_kwargs: Any) -> None:
    for results in _results.values():
        if results:
            console.info("")
            console.info("=== Checks ===")
            for line in checks.table(results):
                console.info(line)
            console.info(f"exit code {exit_code}" + (" (a check failed)" if exit_code == checks.EXIT_CHECK_FAILED else ""))
    _results.clear()


# --- the run report -------------------------------------------------------------------------------

class _RunLog:
    """What the report needs that Locust does not keep: users over time, workers seen."""

    def __init__(self, environment: Any):
        self.environment = environment
        self.users: list[tuple[float, int]] = [(time.time(), 0)]
        self.workers = 0


_run_logs: dict[int, _RunLog] = {}


@events.test_start.add_listener
def _test_started(environment: Any, **_kwargs: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _run_logs[id(environment)] = _RunLog(environment)


@events.spawning_complete.add_listener
def _users_changed(user_count: int, **_kwargs: Any) -> None:
    for log in _run_logs.values():
        log.users.append((time.time(), user_count))
        runner = log.environment.runner
        if isinstance(runner, MasterRunner):
            log.workers = max(log.workers, runner.worker_count)


def run_report(environment: Any, results: list[Result]) -> dict:
    runner = environment.runner
    stats = runner.stats
    histograms = test_histograms(environment)
    names = [reports.NameStats(method, name, e.num_requests, e.num_failures, e.total_rps,
                               histograms.get((method, name), Histogram()))
             for (name, method), e in stats.entries.items()]
    everything = observer(environment)(None)
    total = reports.NameStats("", "all", everything.requests, everything.failures, everything.rps, everything.histogram)
    failures = [(name, error, count) for (_type, name), by_error in test_failures(environment).items()
                for error, count in by_error.items()]
    start = stats.start_time or time.time()
    end = stats.last_request_timestamp or start
    per_second = sorted(stats.total.num_reqs_per_sec)
    seconds = list(range(int(start), int(end) + 1)) if per_second else []
    log = _run_logs.get(id(environment)) or _RunLog(environment)
    users = [(round(t - start, 1), n) for t, n in log.users]
    users.append((round(end - start, 1), runner.user_count))
    options = environment.parsed_options
    own = set(default_args_dict())
    settings = {key: value for key, value in sorted(vars(options).items())
                if key not in own and value not in (None, "", [], False)}
    settings.update({key: getattr(options, key) for key in ("num_users", "spawn_rate", "run_time", "processes")
                     if getattr(options, key, None) not in (None, "")})
    return reports.run_report(
        names=names, total=total, failures=failures, checks=results,
        timeline={"seconds": [t - int(start) for t in seconds],
                  "requests": [stats.total.num_reqs_per_sec.get(t, 0) for t in seconds],
                  "failures": [stats.total.num_fail_per_sec.get(t, 0) for t in seconds],
                  "users": users},
        settings=settings, started_at=reports.iso_utc(stats.start_time), duration_s=round(end - start, 1),
        users=max([n for _t, n in users] or [0]),
        workers=log.workers if isinstance(runner, MasterRunner) else None,
        endpoint=getattr(options, "endpoint_name", None),
    )
