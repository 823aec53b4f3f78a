"""The end of a test, with nothing lost: every request that was sent is recorded, or counted as
abandoned.

Locust stops a test by killing its users' greenlets; a request under way at that instant has reached
the endpoint but never Locust's stats (and a headless master waits only half a second for the
workers' last reports). So every way a test ends drains first: on the master, before Locust stops the
users (``test_stopping``: the run time is up, the web UI's stop, SIGTERM/SIGINT, the last worker
gone), the workers are told to drain (Locust's custom messages); a local runner drains itself; a
worker that quits on its own (scaled down) drains before it says goodbye. Draining: start no new
request, wait for those in flight (at most ``--drain-timeout``; default the request timeout, the
longest a live endpoint's answer can take), then report at once. What is still in flight then is
*abandoned*: counted as such, and never reported later as a success or failure, so that the
endpoint's count = succeeded + failed + abandoned on every way a test can stop.
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
    """This process's requests under way, and whether new ones may start: the client's gate.

    ``generation`` changes when a drain gives up on what is still in flight: a request that started in
    an earlier generation is abandoned (already counted) and must not be reported when it ends."""

    __slots__ = ("count", "draining", "generation", "abandoned", "stalls")

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.generation = 0
        self.abandoned = 0  # cut off by a drain since the process started (an only-growing total)
        self.stalls: list[tuple[float, float]] = []  # (from, to) wall clock: this process was not running

    def reopen(self) -> None:
        self.draining = False

    def stalled_during(self, start: float, end: float) -> bool:
        """Whether this process itself stood still (SIGSTOP, a starved VM) for a long part of [start, end]:
        then a timeout in that interval is the generator's, not the endpoint's."""
        return any(s < end and e > start for s, e in self.stalls)

    def drain(self, timeout: float) -> int:
        """Stop starting requests, wait for those in flight (at most ``timeout`` s); abandon the rest.
        Returns how many were abandoned."""
        self.draining = True
        deadline = time.monotonic() + timeout
        while self.count and time.monotonic() < deadline:
            gevent.sleep(0.01)
        cut = self.count
        if cut:
            logger.warning(
                "%d requests still under way after --drain-timeout %g s: counted as abandoned", cut, timeout
            )
            self.abandoned += cut
            self.generation += 1
            self.count = 0  # the abandoned ones no longer count as in flight (they will not be reported)
        return cut


def drain_worker(environment: Any, gate: InFlight, timeout: float) -> None:
    """On a worker: drain, send the stats report at once (Locust's own, as ``WorkerRunner._send_stats``
    builds it, with the measurements' delta) and say so."""
    runner = environment.runner
    gate.drain(timeout)
    report: dict = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=report)
    runner.send_message("stats", report)
    runner.send_message(DRAINED)


def drain_workers(runner: Any, drained: set[str], timeout: float) -> None:
    """On the master: tell every worker to drain and wait for all (at most ``timeout`` and a margin)."""
    workers = {
        client.id for client in runner.clients.ready + runner.clients.spawning + runner.clients.running
    }
    if not workers:
        return
    drained.clear()
    runner.send_message(DRAIN, timeout)
    deadline = time.monotonic() + timeout + MARGIN_S
    while not workers <= drained and time.monotonic() < deadline:
        gevent.sleep(0.02)
    missing = len(workers - drained)
    if missing:
        logger.warning("%d workers did not report the end of their requests within --drain-timeout", missing)
