"""The Locust side of the load generator: options, validation before any load, the per-process
:class:`~smload.client.Runtime`, generator health and the end-of-test summary.

Importing this module (``from smload import SageMakerUser`` does) registers everything with
Locust's events. Validation happens where Locust gives us the options:

* master or local runner, at ``init``: every registered check (``smload.usage``), exit code 2
  with one line before anything is spawned. In web UI mode a *missing* required option is left to
  the form (it is marked required there); a wrong one still stops the process.
* web UI: a ``/swarm`` form is checked before Locust applies it; a bad value is refused with the
  message shown in the UI, and nothing starts.
* worker, at ``test_start`` (the master's options have just arrived): the same checks; on failure
  the worker logs the line, sends nothing and quits with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import weakref
from typing import Any

import gevent
import psutil
from locust import events
from locust.argument_parser import default_args_dict
from locust.runners import MasterRunner, WorkerRunner

from . import calibration_shape, summary, usage, verdict, web_checks  # noqa: F401 - --check/--report, --calibrate, /smload/checks (smload k8s run), for every SageMakerUser
from . import options as smload_options
from .client import Runtime

logger = logging.getLogger("smload")

PROG = "locust"
_runtimes: weakref.WeakKeyDictionary[Any, Runtime | None] = weakref.WeakKeyDictionary()


def runtime_for(environment: Any) -> Runtime | None:
    """The current test's Runtime of this process, None when its options were refused."""
    return _runtimes.get(environment)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    smload_options.add_arguments(parser)


@usage.validator
def check_endpoint_options(options: Any) -> None:
    """The core's check: endpoint, payloads, timeouts, client, region, endpoint URL, credentials."""
    from . import aws

    settings = smload_options.settings_from(options)
    aws.credentials(aws.session(), settings.region, settings.role_arn)


def _auto_start(options: Any) -> bool:
    return bool(getattr(options, "headless", False) or getattr(options, "autostart", False))


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, web_ui: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    summary.track_generator_health(environment)
    if options is None or isinstance(runner, WorkerRunner):
        return  # a worker checks the master's options when they arrive (test_start)
    try:
        usage.validate(options)
    except usage.MissingOption as err:
        if _auto_start(options) or web_ui is None:
            _refuse(err, options)
        logger.info("%s: fill it in the web UI's custom parameters before starting", err)
    except usage.UsageError as err:
        _refuse(err, options)
    if web_ui is not None:
        _check_swarm_form(web_ui, environment)
    _summary_at_exit(environment)


def _refuse(err: usage.UsageError, options: Any) -> None:
    """Exit 2 with one line. With ``--processes`` the workers were already forked (Locust forks
    before ``init``) and would outlive us for a minute (Locust's own clean-up forgets them): they
    have done nothing yet, so they go first, silently."""
    if getattr(options, "processes", None):
        for child in psutil.Process().children():
            child.kill()
    logging.disable()  # what Locust's greenlets still log on the way out would bury the one line
    usage.exit_usage(err, PROG)


def _check_swarm_form(web_ui: Any, environment: Any) -> None:
    """Refuse a web UI start whose custom parameters do not pass the checks, before Locust applies them."""
    from flask import jsonify, request

    locust_own = set(default_args_dict())

    @web_ui.app.before_request
    def _refuse_bad_form() -> Any:
        if request.method != "POST" or not request.path.endswith("/swarm"):
            return None
        current = vars(environment.parsed_options)
        candidate = argparse.Namespace(**current)
        for key, value in request.form.items():
            if key in current and key not in locust_own:
                setattr(candidate, key, value == "true" if isinstance(current[key], bool) else value)
        try:
            usage.validate(candidate)
        except usage.UsageError as err:
            logger.error("refused to start: %s", err)
            return jsonify({"success": False, "message": str(err), "host": environment.host})
        return None


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    summary.test_started(environment)
    if isinstance(runner, MasterRunner):
        return
    try:
        if isinstance(runner, WorkerRunner):
            usage.validate(environment.parsed_options)
        _runtimes[environment] = Runtime.from_options(environment.parsed_options, getattr(runner, "worker_index", 0))
    except usage.UsageError as err:
        _runtimes[environment] = None
        logger.error("%s: error: %s", PROG, err)
        if isinstance(runner, WorkerRunner) or _auto_start(environment.parsed_options):
            environment.process_exit_code = usage.EXIT_USAGE
            gevent.spawn(runner.quit)
        else:
            gevent.spawn(runner.stop)


def _summary_at_exit(environment: Any) -> None:
    """Rendered at ``quitting`` (after the master's final worker reports, before ``--json`` prints
    Locust's stats, which empties them), printed at ``quit``: after Locust's own tables, the last
    thing on the terminal. With ``--json`` stdout belongs to Locust's JSON: the summary goes to stderr."""
    rendered: list[str] = []

    def render(**_kwargs: Any) -> None:
        rendered.append(summary.render(environment))

    def show(**_kwargs: Any) -> None:
        if rendered and rendered[-1]:
            stream = sys.stderr if getattr(environment.parsed_options, "json", False) else sys.stdout
            stream.write(rendered[-1])
            stream.flush()

    environment.events.quitting.add_listener(render)
    environment.events.quit.add_listener(show)
