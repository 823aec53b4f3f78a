"""The plugin: every Locust listener of sagemaker-loadtest is registered here, and only here.
Importing it (``from smload import SageMakerUser`` does) adds the options to Locust's parser and,
at ``init``, gives the Environment its :class:`~.testrun.TestRun`, wired to the events below.

Where options are checked (:meth:`TestRun.check_options`):

* master or local runner, at ``init``: every option group, exit code 2 with one line before
  anything is spawned. In web UI mode a *missing* required option is left to the form (it is
  marked required there); a wrong one still stops the process.
* web UI: a ``/swarm`` form is checked before Locust applies it (:mod:`.web`).
* worker, at ``test_start`` (the master's options have just arrived): the same checks; on failure
  the worker logs the line, sends nothing and quits with exit code 2.

The events, by process (M master, W worker, L local runner):

=====================  =====  ==================================================================
request                W L    the measurements record it (smload.measure.store)
report_to_master       W      the measurements' delta and health go with the report
worker_report          M      ... and are folded in
test_start             M W L  a new test: timeline, measurements; W L build the users' Runtime
                              (and in open loop the arrival scheduler)
spawning_complete      M L    users over time; steady state from here on; open loop: re-split the rate
test_stopping          M W L  open loop: no more arrivals (first); M L: drain: the requests in flight
                              finish, or are abandoned (smload.measure.drain)
test_stop              W L    W reports at once (the tail reaches the master before the next test)
quitting               M W L  M L: the end of the test, after the workers' last reports: TestRun.finish
                              W: a worker quitting on its own drains and reports first (scale-down)
quit                   M L    the summary and the checks table, last on the terminal
=====================  =====  ==================================================================

Custom messages: ``smload_drain``/``smload_drained`` (:mod:`smload.measure.drain`) and, in open loop,
``smload_arrivals`` (master -> worker: its share of the total rate, :class:`smload.load.open_loop.Share`).
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import Any

import gevent
import psutil
from locust import events

from smload import flags, usage
from smload.calibration import options as _calibration_options  # noqa: F401 - registers its option group
from smload.calibration import shape as calibration_shape
from smload.invoke import options as _endpoint_options  # noqa: F401 - registers its option group
from smload.load import options as _open_loop_options  # noqa: F401 - registers its option group
from smload.measure import drain, wire
from smload.usage import UsageError

from . import lifeline, web
from . import options as _verdict_options  # noqa: F401 - registers its option group
from .testrun import LOCAL, MASTER, WORKER, TestRun

logger = logging.getLogger("smload")
PROG = "locust"
ARRIVALS = "smload_arrivals"  # master -> worker: its share of the open-loop rate
# entry points loaded with this module: the exporter (nothing in the core imports it)
PLUGINS = "smload.plugins"


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    flags.add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, web_ui: Any = None, **_kwargs: Any) -> None:
    if runner is None:
        return
    run = TestRun.attach(environment, runner)
    _wire(environment, run)
    options = environment.parsed_options
    if options is None or run.role == WORKER:
        return  # a worker checks the master's options when they arrive (test_start)
    try:
        run.check_options(options)
        run.preflight()
    except usage.MissingOption as err:
        if _auto_start(options) or web_ui is None:
            _refuse(err, options)
        logger.info("%s: fill it in the web UI's custom parameters before starting", err)
    except UsageError as err:
        _refuse(err, options)
    _install_calibration(environment, run)
    try:
        run.install_open_loop()
    except UsageError as err:
        _refuse(err, options)
    if web_ui is not None:
        web.install(web_ui, run)
    # Locust sets its --run-time timer right after init, on the event loop's clock, which has not moved
    # since the loop was created at Locust's import: a slow start-up (imports, checks, a busy machine)
    # would end the test that much early, and the test would look interrupted (exit 4).
    gevent.get_hub().loop.update_now()


def _wire(environment: Any, run: TestRun) -> None:
    hooks = environment.events
    measurements = run.measurements
    gate = measurements.in_flight
    runner = environment.runner
    hooks.request.add_listener(measurements.on_request)
    hooks.test_start.add_listener(lambda **_kw: _on_test_start(environment, run))
    hooks.spawning_complete.add_listener(lambda user_count, **_kw: run.users_changed(user_count))
    hooks.test_stop.add_listener(lambda **_kw: run.stop_test())
    hooks.test_stopping.add_listener(lambda **_kw: run.stopping())
    if measurements.probe is not None:
        measurements.probe.start()
    if run.role == WORKER:
        hooks.report_to_master.add_listener(
            lambda data, **_kw: data.__setitem__(wire.FIELD, measurements.report())
        )
        hooks.test_stop.add_listener(lambda **_kw: _report_now(environment, run))
        runner.register_message(
            drain.DRAIN, lambda environment, msg, **_kw: _drain(environment, run, msg.data), concurrent=True
        )
        runner.register_message(ARRIVALS, lambda environment, msg, **_kw: run.assign_share(msg.data))
        # quitting on its own (scaled down, SIGTERM): registered after the runner's own listener, so
        # that (Locust fires quitting in reverse) it drains and reports before the runner says goodbye
        hooks.quitting.add_listener(
            lambda **_kw: _drain(environment, run, run.drain_timeout) if gate.count else run.stop_arrivals()
        )
        gevent.spawn(lifeline.watch_master, runner, gate)
    else:
        hooks.quit.add_listener(lambda exit_code, **_kw: run.show(exit_code))
    if run.role == MASTER:
        hooks.worker_report.add_listener(
            lambda client_id, data, **_kw: measurements.fold_report(client_id, data.get(wire.FIELD))
        )
        run.send_share = lambda worker, share: runner.send_message(ARRIVALS, list(share), client_id=worker)
        drained: set[str] = set()
        runner.register_message(drain.DRAINED, lambda environment, msg, **_kw: drained.add(msg.node_id))
        hooks.test_stopping.add_listener(
            lambda **_kw: drain.drain_workers(runner, drained, run.drain_timeout)
        )
        gevent.spawn(lifeline.watch_workers, runner, measurements)
    if run.role == LOCAL:
        hooks.test_stopping.add_listener(lambda **_kw: gate.drain(run.drain_timeout))


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    """Registered at import, before any runner registers its own: Locust fires ``quitting`` in reverse
    order, so this runs after the master has quit its workers and received their final reports."""
    run = TestRun.find(environment)
    if run is not None:
        run.finish()


def _drain(environment: Any, run: TestRun, timeout: Any) -> None:
    """A worker told to drain: first no more arrivals, then finish what is in flight."""
    run.stop_arrivals()
    drain.drain_worker(environment, run.measurements.in_flight, float(timeout or 0))


def _on_test_start(environment: Any, run: TestRun) -> None:
    run.start_test()
    if run.role == MASTER:
        return
    try:
        if run.role == WORKER:
            run.check_options(environment.parsed_options)
        if run.invokes:
            run.build_runtime()
    except UsageError as err:
        run.refuse_runtime()
        logger.error("%s: error: %s", PROG, err)
        runner = environment.runner
        if run.role == WORKER or _auto_start(environment.parsed_options):
            environment.process_exit_code = usage.EXIT_USAGE
            gevent.spawn(runner.quit)
        else:
            gevent.spawn(runner.stop)


def _report_now(environment: Any, run: TestRun) -> None:
    """Users have stopped: report now, so the test's last requests reach the master before its
    ``client_stopped`` (same socket, in order) and hence before any next test starts there."""
    measurements = run.measurements
    if not measurements.pending and not measurements.pending_arrivals:
        return
    runner = environment.runner
    data: dict[str, Any] = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
    try:
        runner.send_message("stats", data)
    except Exception:  # noqa: BLE001 - no master right now: keep ours for the next report
        measurements.keep_unsent(data[wire.FIELD])


def _install_calibration(environment: Any, run: TestRun) -> None:
    calibration = run.settings.get("calibration")
    if calibration is None or not calibration.enabled:
        return
    try:
        run.calibration = calibration_shape.install(
            environment,
            run.runner,
            calibration,
            run.endpoint,
            run.measurements,
            run.session_for(run.endpoint)[0],
        )
    except UsageError as err:
        _refuse(err, environment.parsed_options)


def _auto_start(options: Any) -> bool:
    return bool(getattr(options, "headless", False) or getattr(options, "autostart", False))


def _refuse(err: UsageError, options: Any) -> None:
    """Exit 2 with one line. With ``--processes`` the workers were already forked (Locust forks
    before ``init``) and would outlive us for a minute (Locust's own clean-up forgets them): they
    have done nothing yet, so they go first, silently."""
    if getattr(options, "processes", None):
        for child in psutil.Process().children():
            child.kill()
    logging.disable()  # what Locust's greenlets still log on the way out would bury the one line
    usage.exit_usage(err, PROG)


web.serve_client_errors_quietly()

# Locust's --processes forks its workers (os.fork): each dies with its parent, even before it connects.
os.register_at_fork(after_in_child=lambda: lifeline.die_with_parent(os.getppid()))

# Last: a plugin's listeners run after ours (a refused option stops the process before any plugin starts).
for _plugin in entry_points(group=PLUGINS):
    _plugin.load()
