"""A load generator that outlives whoever runs it keeps sending load nobody measures. Two lifelines:

* a worker forked by ``--processes`` dies with its parent (Linux's parent-death signal, set in the
  child right after the fork, before it even tries to connect);
* a worker whose master goes silent (killed, partitioned) stops starting requests at once and
  resumes when the master's heartbeats come back; Locust itself would let it send for 60 s more
  before giving up on the master.

Also on the master: a worker that goes silent during a test is recorded as lost (what it probably
did not report is estimated by the measurements) and its users go to the survivors at once, as
``--enable-rebalancing`` would do, so the offered load stays what was asked.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from typing import Any

import gevent
from locust.rpc.protocol import Message
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
        silent = bool(last) and time.time() - last > MASTER_SILENT_S and runner.worker_state in (STATE_RUNNING,
                                                                                                 STATE_SPAWNING)
        if silent and not paused:
            logger.warning("no heartbeat from the master for %.0f s: sending nothing until it is back", time.time() - last)
            gate.draining = paused = True
        elif paused and not silent:
            logger.info("the master is back: sending again")
            gate.draining = paused = False


def watch_workers(runner: Any, measurements: Any) -> None:
    """On the master: record a worker that went silent during a test and give its users to the others."""
    while True:
        gevent.sleep(1.0)
        if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
            continue
        for client in list(runner.clients.values()):
            if client.state != STATE_MISSING or client.id in measurements.lost:
                continue
            lost = measurements.worker_lost(client.id, f"worker {runner.get_worker_index(client.id)}", time.time())
            logger.error("%s went silent: about %d requests it made are not in the counts; its users go to the "
                         "other workers", lost.name, lost.unreported_estimate)
            # should it come back (a hung process resumes), it stops the users it still runs
            runner.server.send_to_client(Message("stop", None, client.id))
            if runner.worker_count and not runner.rebalancing_enabled():
                runner.start(runner.target_user_count, runner.spawn_rate)
