"""The TestRun: one per Locust Environment, created by :mod:`.hooks` at ``init``. It holds what a
test needs from start to verdict, so that no part keeps per-test state of its own:

* the options, checked once per test (:func:`smload.flags.parse`: each part's typed settings) and
  the AWS session and credentials, resolved once for them;
* the measurements (:mod:`smload.measure.store`), and on processes that send requests the
  Runtime the users share (:mod:`smload.invoke.client`);
* in open loop (:mod:`smload.load`): on the master (or local runner) the rate shape and the offer
  (the target rate over time, split over the workers that have executors), and on processes that
  send requests the scheduler, whose arrivals and drops it counts in the measurements;
* the test's timeline: when it started, when all users ran, users over time, workers seen;
* the end of a test on the master (or the local runner), one written-down pipeline
  (:meth:`TestRun.finish`): fold the workers' last reports -> compare the variants -> evaluate the
  checks -> write the reports -> render the summary -> decide the exit code.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any

from locust.runners import MasterRunner, WorkerRunner

from smload import flags
from smload.invoke import aws, llm, llm_transport
from smload.invoke.client import Runtime, attach_runtime
from smload.invoke.options import Settings as EndpointSettings
from smload.invoke.user import SageMakerUser
from smload.load import arrivals, open_loop
from smload.load.options import KEY as OPEN_LOOP
from smload.load.options import OpenLoop
from smload.load.shape import OptionsShape, RateShape
from smload.measure import store
from smload.results.checks import Result
from smload.usage import MissingOption, UsageError

from . import ab, report, summary, verdict

logger = logging.getLogger("smload")

MASTER, WORKER, LOCAL = "master", "worker", "local"
_ATTRIBUTE = "smload_run"


class TestRun:
    __test__ = False  # not a pytest test class

    def __init__(self, environment: Any, runner: Any):
        self.environment = environment
        self.role = (
            MASTER
            if isinstance(runner, MasterRunner)
            else WORKER
            if isinstance(runner, WorkerRunner)
            else LOCAL
        )
        self.measurements = store.attach(
            environment, sends=self.role != MASTER, aggregates=self.role != WORKER
        )
        self.settings: dict[str, Any] = {}  # each option group's checked settings (smload.flags)
        # the current test
        self.started_at: float | None = None
        self.steady_at: float | None = None  # all users running (Locust's spawning_complete)
        self.stopped_at: float | None = None
        self.users: list[tuple[float, int]] = []
        self.workers_seen = 0
        self.results: list[Result] = []
        self.analysis: ab.Analysis | None = None  # the variants compared, the traffic split
        self.summary_text = ""
        self.calibration: Any = None  # the CalibrationShape, when --calibrate
        # open loop
        self.scheduler: open_loop.Scheduler | None = None  # worker or local runner: this test's arrivals
        self.send_share: Any = None  # master: (worker id, Share) -> None, set by the hooks
        self.offers: list[tuple[float, float]] = []  # (since, total rate): the target over the test
        self.offer_stopped: float | None = None
        self._split: tuple | None = None  # the last (rate, workers) sent
        self._early_share: Any = None  # worker: a share that arrived before this test's scheduler was built

    @classmethod
    def attach(cls, environment: Any, runner: Any) -> TestRun:
        run = getattr(environment, _ATTRIBUTE, None)
        if run is None:
            run = cls(environment, runner)
            setattr(environment, _ATTRIBUTE, run)
        return run

    @classmethod
    def find(cls, environment: Any) -> TestRun | None:
        return getattr(environment, _ATTRIBUTE, None)

    @property
    def invokes(self) -> bool:
        """Whether a user class of the locustfile is a SageMakerUser."""
        return any(issubclass(user, SageMakerUser) for user in self.environment.user_classes or ())

    @property
    def runner(self) -> Any:
        return self.environment.runner

    @property
    def endpoint(self) -> EndpointSettings | None:
        return self.settings.get("endpoint")

    @property
    def open_loop(self) -> OpenLoop | None:
        """The open-loop settings when this test offers arrivals (options, or the locustfile's RateShape)."""
        settings = self.settings.get(OPEN_LOOP)
        if settings is None:
            return None
        calibration = self.settings.get("calibration")
        if calibration is not None and calibration.enabled and calibration.search.by_rate:
            # calibration by rate: constant arrivals, the steps' rates from its shape
            return dataclasses.replace(
                settings, rate=None, profile=None, process=arrivals.Process(arrivals.CONSTANT, 0.0)
            )
        return settings if settings.enabled or isinstance(self.environment.shape_class, RateShape) else None

    # --- options, checked once ----------------------------------------------------------------------
    def check_options(self, options: Any) -> dict[str, Any]:
        """Check every option and file and resolve the credentials; kept for the test. Raises UsageError.
        The endpoint options only matter (and are required) when a user class invokes the endpoint."""
        groups = [g.key for g in flags.groups() if g.key != "endpoint" or self.invokes]
        settings = flags.parse(options, only=groups)
        endpoint = settings.get("endpoint")
        if endpoint is not None:
            self.session_for(endpoint)
        self.settings = settings
        return settings

    def preflight(self) -> None:
        """Before any load (master or local runner): what the options alone cannot tell. ``--api
        openai`` needs an endpoint whose container has the OpenAI-compatible route."""
        endpoint = self.endpoint
        if endpoint is None or endpoint.llm is None or endpoint.llm.api != llm.OPENAI_API:
            return
        session, credentials = self.session_for(endpoint)
        llm_transport.probe_openai_route(endpoint, credentials, session.get_config_variable("ca_bundle"))

    def session_for(self, endpoint: EndpointSettings) -> tuple[Any, Any]:
        """The botocore session and credentials of these settings, resolved once (per region and role)."""
        return aws.Sessions.of(self.environment).get(endpoint.region, endpoint.role_arn)

    def build_runtime(self) -> Runtime:
        """The Runtime this process's users share during the test (workers and the local runner)."""
        endpoint = self.endpoint
        if endpoint is None:
            raise MissingOption("--endpoint-name", "is required: the SageMaker endpoint to invoke")
        session, credentials = self.session_for(endpoint)
        options = self.environment.parsed_options
        index = getattr(self.runner, "worker_index", 0)
        users = int(getattr(options, "num_users", None) or 1)
        runtime = Runtime(
            endpoint, credentials, session, self.measurements.in_flight, index, users, self._scheduler(index)
        )
        attach_runtime(self.environment, runtime)
        return runtime

    # --- open loop -------------------------------------------------------------------------------------
    def _scheduler(self, worker_index: int) -> open_loop.Scheduler | None:
        """This test's arrival scheduler (workers, local runner); None in closed loop."""
        self.stop_arrivals()
        settings = self.open_loop
        if settings is None:
            self.scheduler = None
            return None
        seed = None if settings.seed is None else f"{settings.seed}:{worker_index}"
        self.scheduler = open_loop.Scheduler(settings.process, seed, self.measurements.count_arrivals)
        early, self._early_share = self._early_share, None
        if early is not None:
            self.scheduler.assign(early)
        return self.scheduler

    def install_open_loop(self) -> None:
        """Master or local runner, once the options are checked (and again for a web UI start): the
        rate shape drives the test when a rate is given, keeping ``--max-in-flight`` executors."""
        environment = self.environment
        shape = environment.shape_class
        settings = self.settings.get(OPEN_LOOP)
        custom = isinstance(shape, RateShape) and not isinstance(shape, OptionsShape)
        calibration = self.settings.get("calibration")
        if (
            settings is not None
            and calibration is not None
            and calibration.enabled
            and calibration.search.by_rate
            and self.calibration is not None
        ):
            self.calibration.executors = settings.max_in_flight
            self.calibration.on_rate = self.offer_rate
            if self.role == MASTER and environment.parsed_options is not None:
                environment.parsed_options.enable_rebalancing = True
            return
        if settings is None or not (settings.enabled or custom):
            if isinstance(shape, OptionsShape):  # a web UI test without a rate after one with
                environment.shape_class = None
            return
        if shape is not None and not isinstance(shape, RateShape):
            raise UsageError(
                "--arrival-rate",
                f"the locustfile already has a load shape ({type(shape).__name__}): "
                "remove it, or subclass smload.RateShape to give the rate over time",
            )
        if custom and settings.enabled:
            raise UsageError(
                "--arrival-rate",
                f"the locustfile's {type(shape).__name__} gives the rate: leave out "
                "--arrival-rate and --rate-profile",
            )
        calibration = self.settings.get("calibration")
        if calibration is not None and calibration.enabled:
            raise UsageError(
                "--arrival-rate",
                "cannot be combined with --calibrate (calibration offers its own load: "
                "--calibrate --mode rate steps the arrival rate)",
            )
        if not custom:
            if not isinstance(shape, OptionsShape):
                shape = environment.shape_class = OptionsShape(settings)
            shape.settings = settings
        shape.runner = self.runner  # Locust sets it only on a shape it found itself
        shape.executors = settings.max_in_flight
        shape.on_rate = self.offer_rate
        if self.role == MASTER and environment.parsed_options is not None:
            # Locust moves users off a lost worker only with rebalancing: the pool must stay whole
            environment.parsed_options.enable_rebalancing = True

    def offer_rate(self, rate: float, force: bool = False) -> None:
        """The total target rate now (the shape, once a second): split it over the workers that have
        executors and send each its share when anything changed. Local runner: its own scheduler."""
        self.measurements.arrival_target = rate
        if self.role == MASTER:
            runner = self.runner
            workers = sorted(
                (
                    c.id
                    for c in runner.clients.values()
                    if c.state in ("spawning", "running") and c.user_count > 0
                ),
                key=runner.get_worker_index,
            )
        elif self.scheduler is not None:
            workers = ["local"]
        else:
            workers = []  # the local runner's users start after the shape's first tick
        split = (rate, tuple(workers))
        if split == self._split and not force:
            return
        if not workers:
            return
        self._split = split
        since = time.time() + open_loop.LEAD_S
        self.offers.append((since, rate))
        for worker, share in open_loop.split(rate, workers, since).items():
            if self.role == MASTER:
                self.send_share(worker, share)
            elif self.scheduler is not None:
                self.scheduler.assign(share)

    def assign_share(self, data: Any) -> None:
        """Worker: the master's share for this worker."""
        share = open_loop.Share(*data)
        logger.debug("open loop: this worker's share %s", share)
        if self.scheduler is None:  # a worker that just joined: its test_start comes next
            self._early_share = share
            return
        self.scheduler.assign(share)

    def stop_arrivals(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()

    def offered(self, until: float | None = None) -> tuple[float, float] | None:
        """Open loop: (expected arrivals, seconds) from the first share to the stop (or ``until``)."""
        if not self.offers:
            return None
        end = self.offer_stopped or until or time.time()
        start = self.offers[0][0]
        expected = 0.0
        for (since, rate), (following, _r) in zip(self.offers, [*self.offers[1:], (end, 0.0)], strict=True):
            expected += rate * max(0.0, min(following, end) - since)
        return expected, max(0.0, end - start)

    def refuse_runtime(self) -> None:
        attach_runtime(self.environment, None)

    # --- the timeline ----------------------------------------------------------------------------------
    def start_test(self) -> None:
        self.measurements.in_flight.reopen()
        if self.measurements.probe is not None:
            self.measurements.probe.test_started()
        if self.role == WORKER:
            return
        self.offers, self.offer_stopped, self._split = [], None, None
        self.measurements.start_test()
        self.started_at = time.time()
        self.steady_at = self.stopped_at = None
        self.users = [(self.started_at, 0)]
        self.results = []
        self._local_health()

    def users_changed(self, user_count: int) -> None:
        if self.role == WORKER:
            return
        self.steady_at = time.time()
        self.users.append((self.steady_at, user_count))
        if self.role == MASTER:
            self.workers_seen = max(self.workers_seen, self.runner.worker_count)
        if self.open_loop is not None and self.measurements.arrival_target is not None:
            self.offer_rate(self.measurements.arrival_target)  # executors moved: re-split now
        self._local_health()

    def stopping(self) -> None:
        """Locust's ``test_stopping``: no more arrivals from here on."""
        if self.offers and self.offer_stopped is None:
            self.offer_stopped = time.time()
        if self.measurements.arrival_target is not None:
            self.measurements.arrival_target = 0.0
        self.stop_arrivals()

    def stop_test(self) -> None:
        self.stopped_at = time.time()
        self._local_health()

    @property
    def drain_timeout(self) -> float:
        """How long a test's end waits for the requests in flight (smload.measure.drain)."""
        verdict, endpoint = self.settings.get("verdict"), self.endpoint
        if verdict is not None and verdict.drain_timeout is not None:
            return verdict.drain_timeout
        if endpoint is not None:
            return endpoint.connect_timeout + endpoint.request_timeout
        return 0.0

    def incomplete(self) -> list[str]:
        """Why the verdict stands on partial data, if it does: the run was interrupted before its run
        time (or calibration) was over, or a worker went silent."""
        reasons = []
        run_time = getattr(self.environment.parsed_options, "run_time", None)
        ended = self.stopped_at or time.time()
        if run_time and self.started_at and ended - self.started_at < float(run_time) - 1.0:
            reasons.append(
                f"interrupted after {ended - self.started_at:.0f} s of --run-time {float(run_time):g} s"
            )
        shape = self.calibration
        if shape is not None and not shape.completed and shape.search.steps:
            reasons.append("the calibration was interrupted before it finished")
        for lost in self.measurements.lost.values():
            reasons.append(
                f"{lost.name} went silent {lost.lost_at - (self.started_at or lost.lost_at):.0f} s into the test "
                f"(about {lost.unreported_estimate} requests unreported)"
            )
        return reasons

    def _local_health(self) -> None:
        """A local runner sends no reports: its own probe's readings at the test's turning points."""
        if self.role == LOCAL and self.measurements.probe is not None:
            self.measurements.health.add_local(self.measurements.probe)

    # --- the end of a test (master or local runner) ------------------------------------------------
    def finish(self) -> None:
        """At Locust's ``quitting``: after the master received the workers' final reports, before
        Locust picks its exit code. The pipeline of every test's end, in this order."""
        if self.role == WORKER or self.started_at is None:
            return
        self.measurements.fold_pending()  # 1. fold: the workers' reports are in, our own too
        wanted = self.settings.get("verdict")
        if self.calibration is not None:
            self.calibration.finish_at_quit()
        self.analysis = ab.analyse(self)  # 2. variants compared, traffic split
        self.results = verdict.evaluate(self, wanted.checks) if wanted else []  # 3. checks
        if wanted and wanted.report:  # 4. reports
            report.write(self, wanted.report)
        self.summary_text = summary.render(self)  # 5. summary
        self.environment.process_exit_code = verdict.exit_code(self)  # 6. exit code

    def show(self, exit_code: int) -> None:
        """At Locust's ``quit``: after Locust's own tables, the last thing on the terminal."""
        if self.summary_text:  # with --json, stdout belongs to Locust's JSON
            out = sys.stderr if getattr(self.environment.parsed_options, "json", False) else sys.stdout
            out.write(self.summary_text)
            out.flush()
        verdict.print_checks(self.results, exit_code, self.incomplete())
