"""Graceful end of a distributed test: every request that was sent is recorded.

With ``--stop-timeout``, a Locust worker lets its users finish their current task before it quits,
but a headless master waits only half a second for the workers' last reports before it exits
(``MasterRunner.quit``): whatever the users finish later (a slow model, a long response stream) has
reached the endpoint but never Locust's stats. So when the master stops a test it first tells the
workers to drain (Locust's custom messages): a draining worker starts no new invocation, waits for
the ones in flight (at most ``--stop-timeout``), sends its stats report at once and says so; the
master waits for every worker (at most ``--stop-timeout`` and a little), then stops as usual.
Without ``--stop-timeout`` Locust's own behaviour stands: users are stopped at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger("smload")

DRAIN = "smload_drain"
DRAINED = "smload_drained"
_MARGIN_S = 3.0  # for the last report to travel


class InFlight:
    """Invocations under way in this process, and whether new ones may start."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False


in_flight = InFlight()


def attach(environment: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(DRAIN, lambda environment, msg, **_kw: _drain_worker(environment, msg), concurrent=True)
        environment.events.test_start.add_listener(lambda **_kw: _reopen())
    elif isinstance(runner, MasterRunner):
        drained: set[str] = set()
        runner.register_message(DRAINED, lambda environment, msg, **_kw: drained.add(msg.node_id))
        environment.events.test_stopping.add_listener(lambda **_kw: _drain_workers(environment, drained))


def _reopen() -> None:
    in_flight.draining = False


def _drain_worker(environment: Any, msg: Any) -> None:
    runner = environment.runner
    in_flight.draining = True
    deadline = time.monotonic() + float(msg.data or 0)
    while in_flight.count and time.monotonic() < deadline:
        gevent.sleep(0.01)
    if in_flight.count:
        logger.warning("%d invocations still under way after --stop-timeout: they will not be recorded", in_flight.count)
    report: dict = {}  # Locust's own worker report (WorkerRunner._send_stats), sent now, not in 3 s
    environment.events.report_to_master.fire(client_id=runner.client_id, data=report)
    runner.send_message("stats", report)
    runner.send_message(DRAINED)


def _drain_workers(environment: Any, drained: set[str]) -> None:
    timeout = float(environment.stop_timeout or 0)
    runner = environment.runner
    workers = {client.id for client in runner.clients.ready + runner.clients.spawning + runner.clients.running}
    if not timeout or not workers:
        return
    drained.clear()
    runner.send_message(DRAIN, timeout)
    deadline = time.monotonic() + timeout + _MARGIN_S
    while not workers <= drained and time.monotonic() < deadline:
        gevent.sleep(0.02)
    missing = len(workers - drained)
    if missing:
        logger.warning("%d workers did not finish their invocations within --stop-timeout", missing)
