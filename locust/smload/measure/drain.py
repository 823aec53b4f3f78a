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

logger = logging.getLogger("smload")

DRAIN = "smload_drain"  # master -> workers: start nothing new, finish, report (data: the timeout)
DRAINED = "smload_drained"  # worker -> master: done, final report sent
MARGIN_S = 3.0  # for the last report to travel


class InFlight:
    """Invocations under way in this process, and whether new ones may start: the client's gate."""

    __slots__ = ("count", "draining")

    def __init__(self) -> None:
        self.count = 0
        self.draining = False


def drain_worker(environment: Any, gate: InFlight, timeout: float) -> None:
    """On a worker: stop starting invocations, wait for those in flight (at most ``timeout``), send
    the stats report at once (Locust's own, as ``WorkerRunner._send_stats`` builds it) and say so."""
    runner = environment.runner
    gate.draining = True
    deadline = time.monotonic() + timeout
    while gate.count and time.monotonic() < deadline:
        gevent.sleep(0.01)
    if gate.count:
        logger.warning("%d invocations still under way after --stop-timeout: they will not be recorded", gate.count)
    report: dict = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=report)
    runner.send_message("stats", report)
    runner.send_message(DRAINED)


def drain_workers(runner: Any, drained: set[str], timeout: float) -> None:
    """On the master: tell every worker to drain and wait for all (at most ``timeout`` and a margin)."""
    workers = {client.id for client in runner.clients.ready + runner.clients.spawning + runner.clients.running}
    if not timeout or not workers:
        return
    drained.clear()
    runner.send_message(DRAIN, timeout)
    deadline = time.monotonic() + timeout + MARGIN_S
    while not workers <= drained and time.monotonic() < deadline:
        gevent.sleep(0.02)
    missing = len(workers - drained)
    if missing:
        logger.warning("%d workers did not finish their invocations within --stop-timeout", missing)
