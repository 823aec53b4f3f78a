"""A load generator that outlives whoever runs it keeps sending load nobody measures. Two lifelines:

* a worker forked by ``--processes`` dies with its parent (Linux's parent-death signal, set in the
  child right after the fork, before it even tries to connect);
* a worker whose master goes silent (killed, partitioned) stops starting requests at once and
  resumes when the master's heartbeats come back; Locust itself would let it send for 60 s more
  before giving up on the master.

Also on the master: a worker that goes silent during a test (Locust marks it missing after 3 missed
heartbeats) has its users moved to the others at once, as ``--enable-rebalancing`` would do, so that
the offered load stays what was asked; should it come back (a hung process resumes, a busy machine
lets it run again) the users are spread over all again, its own included. The measurements record
the silence (with an estimate of what it did not report); a worker silent for 10 s or more, or at
the test's end, is lost, and the verdict stands on partial data.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from typing import Any

import gevent
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING

logger = logging.getLogger("smload")

PR_SET_PDEATHSIG = 1
MASTER_SILENT_S = 3.0  # Locust's heartbeat liveness (3 missed 1-s heartbeats)


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux); a no-op elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def watch_master(runner: Any, gate: Any) -> None:
    """On a worker: no new request while the master is silent (the gate's ``draining``)."""
    paused = False
    while True:
        gevent.sleep(1.0)
        last = runner.last_heartbeat_timestamp
        silent = (
            bool(last)
            and time.time() - last > MASTER_SILENT_S
            and runner.worker_state in (STATE_RUNNING, STATE_SPAWNING)
        )
        if silent and not paused:
            logger.warning(
                "no heartbeat from the master for %.0f s: sending nothing until it is back",
                time.time() - last,
            )
            gate.draining = paused = True
        elif paused and not silent:
            logger.info("the master is back: sending again")
            gate.draining = paused = False


def watch_workers(runner: Any, measurements: Any) -> None:
    """On the master: record a worker that went silent during a test; spread the users over the others,
    and over all again when it comes back."""
    while True:
        gevent.sleep(1.0)
        if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
            continue
        changed = False
        for client in list(runner.clients.values()):
            silent = measurements.silent.get(client.id)
            if client.state == STATE_MISSING and (silent is None or silent.back_at is not None):
                if silent is not None:  # silent again: a new episode
                    del measurements.silent[client.id]
                silent = measurements.worker_silent(
                    client.id, f"worker {runner.get_worker_index(client.id)}", time.time()
                )
                logger.error(
                    "%s went silent: about %d requests it made are not in the counts yet; its users go to "
                    "the other workers",
                    silent.name,
                    silent.unreported_estimate,
                )
                changed = True
            elif client.state != STATE_MISSING and silent is not None and silent.back_at is None:
                measurements.worker_back(client.id, time.time())
                logger.warning(
                    "%s is back after %.0f s of silence", silent.name, time.time() - silent.lost_at
                )
                changed = True
        if changed and runner.worker_count and not runner.rebalancing_enabled():
            runner.start(runner.target_user_count, runner.spawn_rate)
