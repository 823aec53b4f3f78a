"""The bundled locustfile, and every request's start (the intended start in open loop), response
time and schedule lag written to ``$SMLOAD_BENCH_RECORD_DIR/<pid>.csv`` when the process stops: the
per-window figures of bench_open_loop.py (overload honesty) and the CV of the intended and the
actual send times (rate truth)."""

import os

from locust import events

from smload.locustfile import *  # noqa: F403 - the bundled user
from smload.record import RECORD, SCHEDULE_LAG

_DIR = os.environ.get("SMLOAD_BENCH_RECORD_DIR")
_LINES: list[str] = []


@events.request.add_listener
def _record(request_type, name, response_time, start_time=None, context=None, **_kwargs):
    if _DIR and start_time is not None and response_time is not None:
        record = (context or {}).get(RECORD)
        lag = dict(record.timings).get(SCHEDULE_LAG, 0.0) if record is not None else 0.0
        _LINES.append(f"{start_time:.6f},{response_time:.3f},{lag:.4f}")


@events.test_stop.add_listener
def _flush(**_kwargs):
    if _DIR and _LINES:
        with open(os.path.join(_DIR, f"{os.getpid()}.csv"), "a") as out:
            out.write("\n".join(_LINES) + "\n")
        _LINES.clear()
