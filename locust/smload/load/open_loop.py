"""The worker's open-loop scheduler: arrivals at this worker's share of the total rate, each handed
to an idle executor (a Locust user waiting in its ``wait_time``), or dropped when none is idle.

Why users as executors: a custom locustfile's tasks run at a rate with no new API, each executor
keeps its own keep-alive connection (the fast client's), the pool is Locust's user count (spawned,
rebalanced and stopped by Locust itself), and a busy pool is visible: an arrival that finds every
executor busy is **dropped** and counted, never delayed (a delay would hide the overload that
open-loop testing exists to show). Idle executors are taken last-in first-out, so the same few
connections stay warm at a low rate.

The schedule is on the wall clock: the master gives every worker the same ``since`` instant with
its share (:class:`Share`), so constant arrivals of ``k`` workers interleave evenly (worker ``j``
sends at ``since + (j + n·k) / R``) and a re-split takes effect on all workers at once.

Timing: gevent's timers have millisecond granularity (libev rounds a poll's timeout up to 1 ms),
so the loop sleeps until ``SPIN_S`` before an arrival and then yields (``gevent.sleep(0)``: other
greenlets and I/O still run) until it is due. What is left, the lag between the intended start and
the actual send, is measured per request (``schedule_lag``) and charged to the latency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import gevent
from gevent.event import AsyncResult, Event

from .arrivals import CONSTANT, Process

logger = logging.getLogger("smload")

SPIN_S = 0.0012  # sleep until this close to an arrival, then yield until it is due
CHECK_S = 0.05  # a long gap is slept in parts of this, to see a new share in time
LEAD_S = 0.2  # a new share takes effect this long after the master sent it: on every worker at once


class Share(NamedTuple):
    """This worker's part of the total rate, as the master sends it (msgpack: a list)."""

    rate: float  # the total rate over all workers (req/s)
    slot: int  # this worker's place among the workers that get arrivals (0-based)
    of: int  # how many do
    since: float  # unix time from which this share holds (the same on every worker)

    @property
    def own_rate(self) -> float:
        return self.rate / self.of if self.of else 0.0


class Scheduler:
    """One per worker process and test. ``count(arrivals, dropped)`` is called for every arrival
    (the TestRun counts them in the measurements: this package does not know them)."""

    def __init__(self, process: Process, seed: int | None, count: Callable[[int, int], None]):
        self.process = process
        self.gaps = process.gaps(seed)
        self.count = count
        self.idle: list[AsyncResult] = []  # executors waiting for an arrival, the most recent last
        self.share: Share | None = None
        self._next_share: Share | None = None
        self._changed = Event()
        self._greenlet: gevent.Greenlet | None = None
        self.scheduled = 0  # this worker's arrivals since it started, handed out or dropped
        self.dropped = 0

    # --- the executors' side ------------------------------------------------------------------------
    def wait(self) -> float:
        """Block the calling executor until it is handed an arrival; its intended start (unix time)."""
        slot = AsyncResult()
        self.idle.append(slot)
        started = False
        try:
            intended = slot.get()
            started = True
            return intended
        finally:
            if not slot.ready():  # killed while idle (the test stops, the pool shrinks)
                try:
                    self.idle.remove(slot)
                except ValueError:
                    pass
            elif not started:  # handed an arrival, then killed before it could start it
                self.forfeit()

    def forfeit(self) -> None:
        """An arrival handed out could not start (the test was stopping): it counts as dropped, so
        that every arrival is either sent or dropped."""
        self.dropped += 1
        self.count(0, 1)

    # --- the master's side ----------------------------------------------------------------------------
    def assign(self, share: Share) -> None:
        """A new share from the master; the loop starts with the first one."""
        self._next_share = share
        self._changed.set()
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """No more arrivals (the test stops or drains). Executors just handed one get to start it (they
        run until their request is sent before anything else does); idle ones stay blocked until Locust
        stops them."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=True)
            gevent.sleep(0)
        self.share = self._next_share = None

    @property
    def running(self) -> bool:
        return self._greenlet is not None

    # --- the loop -----------------------------------------------------------------------------------
    def _run(self) -> None:
        due: float | None = None  # the next arrival's intended start
        n = 0  # constant arrivals: the index of the next one since the share began
        while True:
            pending = self._next_share
            if pending is not None and (due is None or pending.since <= due):
                self._next_share = None
                self._changed.clear()
                self.share = share = pending
                n = 0
                due = self._first(share)
                if due is None:  # rate 0: nothing until the next share
                    self._changed.wait()
                    continue
            share = self.share
            if due is None:
                self._changed.wait()
                continue
            if not self._until(due):
                continue  # a share arrived while sleeping: it may take effect first
            self._dispatch(due)
            if self.process.kind == CONSTANT:
                n += 1
                due = share.since + (share.slot + n * share.of) / share.rate
            else:
                due += self.gaps.next(share.own_rate)

    def _first(self, share: Share) -> float | None:
        if share.own_rate <= 0:
            return None
        if self.process.kind == CONSTANT:
            return share.since + share.slot / share.rate
        return share.since + self.gaps.next(share.own_rate)

    def _until(self, due: float) -> bool:
        """Wait until ``due``; False when a new share arrived first (checked again by the loop)."""
        while True:
            left = due - time.time()
            if left <= 0:
                return True
            if self._next_share is not None and self._next_share.since <= due:
                return False
            if left > SPIN_S:
                gevent.sleep(min(left - SPIN_S, CHECK_S))
            else:
                gevent.sleep(0)

    def _dispatch(self, intended: float) -> None:
        self.scheduled += 1
        if self.idle:
            self.idle.pop().set(intended)
            self.count(1, 0)
        else:
            self.dropped += 1
            self.count(1, 1)


def split(rate: float, workers: list[str], since: float) -> dict[str, Share]:
    """The total ``rate`` over ``workers`` (ids in a stable order): equal parts, each with its slot
    (constant arrivals interleave by slot), all from the same instant."""
    k = len(workers)
    return {worker: Share(rate, slot, k, since) for slot, worker in enumerate(workers)}
