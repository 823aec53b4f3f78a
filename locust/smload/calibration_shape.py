"""Calibration inside Locust: ``--calibrate`` turns any run of the bundled locustfile into a step
load driven by the master (or the local runner), identical on a laptop (``--processes N``) and in
the Helm chart's job mode. :mod:`smload.calibration` decides the steps; this module runs them and
measures each one.

How a step is measured (the master only sees what the workers report, every ~3 s):

* Throughput and errors come from Locust's per-second request counters (``num_reqs_per_sec``,
  keyed by the second each request *completed* on its worker, merged on the master), summed over
  the whole seconds ``[a, b)``: ``a`` = step start + warm-up, ``b`` = ``a`` + step time. The step
  ends only once every worker has reported after ``b``, so these seconds are complete: the
  report lag costs time, never accuracy.
* Latency percentiles come from the exporter's merged histograms, as the difference of two
  snapshots: one taken once every worker has reported after ``a`` (so that nothing of the warm-up
  is in it), one at the step's end. Only this step's users are running in between.
* Load generator health: the busiest process's CPU and event-loop lag over the window
  (:mod:`smload.generator_health`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from locust import LoadTestShape, events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from . import calibration, checks, generator_health, reports
from .calibration import Instances, Search, Settings, Traffic, Window
from .client import is_invocation_entry
from .histogram import Histogram
from .usage import UsageError, exit_usage, validate, validator

logger = logging.getLogger("smload.calibration")
console = logging.getLogger("locust.stats_logger")

EXIT_NO_RECOMMENDATION = 3  # as a failed --check: the endpoint does not meet what was asked of it
REPORT_SLACK_S = 0.25  # a report must arrive this long after a boundary to cover every request before it
REPORT_WAIT_MAX_S = 15.0  # a worker silent for longer is left out of the boundary wait (logged)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group(
        "Calibration", "Find the knee and recommend the autoscaling target (sagemaker-loadtest; see `smload calibrate`)."
    )

    def option(flag: str, **kwargs: Any) -> None:
        # Not in the web UI form (an argument group's options are not, unless marked): a calibration
        # is set up when Locust starts, not per web UI test.
        group.add_argument(flag, env_var="LOCUST_" + flag.lstrip("-").replace("-", "_").upper(), **kwargs)

    option("--calibrate", action="store_true", default=False,
           help="run a calibration (step load) instead of a fixed number of users")
    option("--slo", action="append", metavar="EXPR",
           help="latency objective a step must meet, e.g. \"p99<300ms\" or \"p95[ab-test/variant-a]<0.2s\" "
                "(repeatable; the --check grammar, latency metrics only)")
    option("--max-error-rate", default="1%", metavar="PCT", help="highest acceptable error rate of a step (default 1%%)")
    option("--safety-factor", type=float, default=0.5, metavar="F",
           help="fraction of the maximum sustainable throughput to target (default 0.5, AWS's starting point)")
    option("--instances", type=int, metavar="N",
           help="instances of each variant (default: from DescribeEndpoint)")
    option("--start-users", type=int, default=1, metavar="N", help="users of the first step (default 1)")
    option("--step-factor", type=float, default=2.0, metavar="F",
           help="users are multiplied by this from step to step until a stop rule fires (default 2)")
    option("--max-users", type=int, default=256, metavar="N", help="never more users than this (default 256)")
    option("--step-warmup", type=float, default=5.0, metavar="SECONDS",
           help="start of each step left out of its measurements (default 5)")
    option("--step-time", type=float, default=10.0, metavar="SECONDS", help="measured part of each step (default 10)")
    option("--max-steps", type=int, default=40, metavar="N", help="at most this many steps (default 40)")
    option("--output", metavar="DIR",
           help="write calibration.json, calibration.html and the scaling policies into DIR")


def parse_error_rate(value: Any, option: str = "--max-error-rate") -> float:
    text = str(value).strip()
    if not text.endswith("%"):
        raise UsageError(option, f"{text!r}: give a percentage, e.g. 1%")
    try:
        percent = float(text[:-1])
    except ValueError:
        raise UsageError(option, f"{text!r} is not a percentage, e.g. 1%") from None
    if not 0 <= percent <= 100:
        raise UsageError(option, f"{text!r} must be between 0% and 100%")
    return percent / 100


def settings_from(options: Any) -> Settings:
    """The calibration options, checked (raises UsageError)."""
    slos = checks.parse_all(getattr(options, "slo", None), option="--slo")
    for slo in slos:
        if not slo.is_latency or slo.op not in ("<", "<="):
            raise UsageError("--slo", f"{slo.text!r}: an SLO is a latency bound, e.g. p99<300ms "
                                      "(use --max-error-rate for errors)")

    def number(name: str, minimum: float, maximum: float = math.inf, integer: bool = False) -> Any:
        flag = "--" + name.replace("_", "-")
        value = getattr(options, name)
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            raise UsageError(flag, f"{value!r} is not a{'n integer' if integer else ' number'}") from None
        if integer and number != float(value) or not minimum <= number <= maximum:
            bound = f"between {minimum:g} and {maximum:g}" if maximum < math.inf else f"at least {minimum:g}"
            raise UsageError(flag, f"{value} must be {bound}")
        return number

    settings = Settings(
        slos=tuple(slos),
        max_error_rate=parse_error_rate(getattr(options, "max_error_rate", "1%")),
        start_users=number("start_users", 1, integer=True),
        step_factor=number("step_factor", 1.1, 10),
        max_users=number("max_users", 1, integer=True),
        warmup_s=number("step_warmup", 0, 3600),
        measure_s=number("step_time", 1, 3600),
        max_steps=number("max_steps", 1, 1000, integer=True),
    )
    if settings.max_users < settings.start_users:
        raise UsageError("--max-users", f"{settings.max_users} is below --start-users {settings.start_users}")
    number("safety_factor", 0.01, 1)
    if getattr(options, "instances", None) is not None:
        number("instances", 1, integer=True)
    return settings


@validator
def check_calibration_options(options: Any) -> None:
    settings_from(options)
    from .verdict import writable_directory

    writable_directory("--output", getattr(options, "output", None))
    if getattr(options, "calibrate", False) and getattr(options, "reset_stats", False):
        raise UsageError("--reset-stats", "cannot be used with --calibrate: each step is measured from the running totals")


# --- instances ------------------------------------------------------------------------------------


def instances_from(options: Any) -> Instances:
    """``--instances N``, else DescribeEndpoint (the SageMaker control plane, not the runtime URL)."""
    if getattr(options, "instances", None):
        return Instances("--instances", each=int(options.instances))
    from . import control_plane

    return control_plane.describe_instances(options)


# --- the shape ------------------------------------------------------------------------------------


@dataclass
class _Mark:
    """A snapshot of the master's merged state at one instant."""

    histograms: dict[tuple[str, str], Histogram]
    errors: dict[str, tuple[str, int]]  # error key -> (message, occurrences)


@dataclass
class _Step:
    users: int
    started: float  # wall clock
    a: int  # the measured seconds [a, b)
    b: int
    first: _Mark | None = None


class CalibrationShape(LoadTestShape):
    """Runs :class:`smload.calibration.Search` step by step (``tick`` is called about once a second)."""

    abstract = False

    def __init__(self, environment: Any, settings: Settings, instances: Instances):
        super().__init__()
        self.environment = environment
        self.settings = settings
        self.instances = instances
        self.search = Search(settings)
        self.step: _Step | None = None
        self.last_report: dict[str, float] = {}  # worker -> when its last report arrived
        self.health = generator_health.samples_of(environment)
        self.started_wall = time.time()
        self.summary: dict | None = None
        self.completed = False  # the search ran to one of its stop rules
        environment.events.worker_report.add_listener(self._on_worker_report)

    def reset_time(self) -> None:  # Locust calls this when the shape (re)starts
        super().reset_time()
        self.search = Search(self.settings)
        self.step = None
        self.summary = None
        self.completed = False
        self.started_wall = time.time()

    def _on_worker_report(self, client_id: str, data: dict, **_kwargs: Any) -> None:
        self.last_report[client_id] = time.time()

    # --- tick --------------------------------------------------------------------------------

    def tick(self) -> tuple[int, float] | None:
        now = time.time()
        if self.summary is not None:
            return None
        step = self.step
        if step is None:
            return self._begin(self.search.next_users(), now)
        if not isinstance(self.runner, MasterRunner):
            self.health.add_local()
        if step.first is None:
            if now >= step.a and self._reported_since(step.a, now):
                step.first = self._mark()
            return self._hold(step)
        if now >= step.b and self._reported_since(step.b, now):
            window = self._window(step, self._mark())
            recorded = self.search.record(window)
            self._log_step(recorded)
            return self._begin(self.search.next_users(), now)
        return self._hold(step)

    def _begin(self, users: int | None, now: float) -> tuple[int, float] | None:
        if users is None:
            self.completed = True
            self.finish()
            return None
        a = math.ceil(now + self.settings.warmup_s)
        previous = self.step.users if self.step else 0
        self.step = _Step(users, now, a, a + math.ceil(self.settings.measure_s))
        return users, float(max(1, abs(users - previous)))  # the whole step's users in one wave

    def _hold(self, step: _Step) -> tuple[int, float]:
        return step.users, float(max(1, step.users))

    def _workers(self) -> list[Any]:
        runner = self.runner
        if isinstance(runner, MasterRunner):
            return [c for c in runner.clients.values() if c.state != STATE_MISSING]
        return []

    def _reported_since(self, boundary: float, now: float) -> bool:
        """Every worker has reported after ``boundary`` (a local runner records as it goes)."""
        late = [w.id for w in self._workers() if self.last_report.get(w.id, 0) < boundary + REPORT_SLACK_S]
        if late and now - boundary > REPORT_WAIT_MAX_S:
            logger.warning("no report from worker(s) %s for %.0f s: measuring without waiting for them", late,
                           now - boundary)
            return True
        return not late

    # --- measuring ---------------------------------------------------------------------------

    def _mark(self) -> _Mark:
        from .verdict import test_histograms

        stats = self.runner.stats
        return _Mark(test_histograms(self.environment),  # copies
                     {key: (e.error if isinstance(e.error, str) else repr(e.error), e.occurrences)
                      for key, e in stats.errors.items()})

    def _window(self, step: _Step, last: _Mark) -> Window:
        stats = self.runner.stats
        seconds = range(step.a, step.b)
        span = step.b - step.a
        first = step.first or _Mark({}, {})

        def traffic(entries: list[Any], histograms: list[tuple[Histogram, Histogram | None]]) -> Traffic:
            requests = sum(e.num_reqs_per_sec.get(t, 0) for e in entries for t in seconds)
            failures = sum(e.num_fail_per_sec.get(t, 0) for e in entries for t in seconds)
            merged = Histogram()
            for now, before in histograms:
                merged.merge(now.since(before) if before is not None else now)
            return Traffic(requests, failures, requests / span, merged)

        names: dict[str, Traffic] = {}  # the invocations only: a stream's TTFB entries are not requests
        for name in sorted({name for name, _method in stats.entries if is_invocation_entry(name)}):
            entries = [e for (n, _m), e in stats.entries.items() if n == name]
            pairs = [(h, first.histograms.get(key)) for key, h in last.histograms.items() if key[1] == name]
            names[name] = traffic(entries, pairs)
        total = Traffic()
        for t in names.values():
            total.add(t)
        errors: dict[str, int] = {}
        for key, (message, count) in last.errors.items():
            delta = count - first.errors.get(key, ("", 0))[1]
            if delta:
                errors[message] = errors.get(message, 0) + delta
        origin = self.started_wall
        cpu, lag = self.health.window(step.a, time.time())
        return Window(step.users, step.started - origin, step.a - origin, step.b - origin, total,
                      {n: t for n, t in names.items() if t.requests or t.histogram.count}, errors, cpu, lag)

    def _log_step(self, step: calibration.Step) -> None:
        w = step.window
        h = w.total.histogram
        p = {q: (f"{h.quantile(q / 100):.1f}" if h.count else "n/a") for q in (50, 99)}
        cpu = f"{w.cpu_percent:.0f}%" if w.cpu_percent is not None else "n/a"
        lag = f"{w.loop_lag_ms:.2f} ms" if w.loop_lag_ms is not None else "n/a"
        verdict = step.verdict if step.good else f"{step.verdict}: {'; '.join(step.reasons)}"
        console.info(f"calibration step {step.index} ({step.phase}): {step.users} users, {w.total.rps:.1f} req/s, "
                     f"p50 {p[50]} ms, p99 {p[99]} ms, errors {w.total.error_rate:.2%}, "
                     f"generator CPU {cpu}, loop lag {lag} -> {verdict}")

    # --- the end -----------------------------------------------------------------------------

    def finish(self, detail: str | None = None) -> dict:
        """Summarize, print and write the results (once)."""
        if self.summary is not None:
            return self.summary
        if detail:
            self.search.stop(detail)
        options = self.environment.parsed_options
        self.summary = calibration.summarize(
            self.search, self.instances, float(options.safety_factor), getattr(options, "endpoint_name", None),
            region=getattr(options, "region", None), settings=_run_settings(options, self.runner),
            started_at=reports.iso_utc(self.started_wall),
            duration_s=time.time() - self.started_wall,
        )
        for line in summary_lines(self.summary):
            console.info(line)
        output = getattr(options, "output", None)
        if output and str(output).strip():
            try:
                paths = reports.write_calibration(output, self.summary)
                console.info(f"calibration results: {', '.join(str(p) for p in paths[:2])}")
            except OSError as err:
                logger.error("--output: cannot write %s: %s", output, err)
        return self.summary


def _run_settings(options: Any, runner: Any) -> dict:
    keys = ("endpoint_name", "endpoint_url", "region", "target_variant", "payload", "client", "stream")
    settings = {key: getattr(options, key) for key in keys if getattr(options, key, None) not in (None, "", False)}
    settings["workers"] = runner.worker_count if isinstance(runner, MasterRunner) else 0
    return settings


def summary_lines(summary: dict) -> list[str]:
    stop = reports.STOP_TEXT.get(summary["stop_reason"], summary["stop_reason"])
    lines = ["", "=== Calibration ===", f"stopped: {stop}" + (f" ({summary['stop_detail']})" if summary["stop_detail"] else "")]
    if summary["max_sustainable_rps"] is None:
        lines.append("no sustainable throughput: no step met the SLO and the error limit")
    else:
        lines.append(f"max sustainable throughput: {summary['max_sustainable_rps']:.1f} req/s")
        if summary["instances"]:
            lines.append(f"instances: {summary['instances']} ({summary['instances_source']}); "
                         f"per instance: {summary['max_rps_per_instance']:.1f} req/s")
            lines.append(f"recommended SageMakerVariantInvocationsPerInstance: "
                         f"{summary['recommended_invocations_per_instance']:.0f} per minute "
                         f"(x safety factor {summary['settings']['safety_factor']} x 60)")
    knee = summary["knee"]
    if knee:
        lines.append(f"knee: {knee['users']} users ({knee['rps']:.1f} req/s), bracketed by {knee['bracket'][0]} and "
                     f"{knee['bracket'][1]} users")
    lines += [f"warning: {w}" for w in summary["warnings"]]
    return lines


# --- wiring -----------------------------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not getattr(options, "calibrate", False) or isinstance(runner, WorkerRunner):
        return
    try:
        validate(options)  # every part's checks first: DescribeEndpoint needs good endpoint options
        settings = settings_from(options)
        instances = instances_from(options)
    except UsageError as err:
        exit_usage(err, "locust")
    if environment.shape_class is not None:
        exit_usage(UsageError("--calibrate", f"the locustfile already has a load shape "
                                             f"({type(environment.shape_class).__name__}): remove it to calibrate"), "locust")
    shape = CalibrationShape(environment, settings, instances)
    shape.runner = runner
    environment.shape_class = shape
    logger.info("calibration: instances from %s%s", instances.source,
                f" ({instances.per_variant})" if instances.per_variant else f" ({instances.each} per variant)")


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    """Exit code of a calibration: 0 with a recommendation, 3 without (no step met the SLO and the
    error limit); Locust's own when it was interrupted. Its failed requests are measurements, not
    errors: Locust alone would exit 1 after an error-rate stop."""
    shape = environment.shape_class
    if not isinstance(shape, CalibrationShape):
        return
    if shape.summary is None:
        if shape.search.steps:
            shape.finish("the test was stopped before calibration finished")
        return
    if shape.completed:
        code = 0 if shape.summary["max_sustainable_rps"] is not None else EXIT_NO_RECOMMENDATION
        environment.process_exit_code = max(environment.process_exit_code or 0, code)
