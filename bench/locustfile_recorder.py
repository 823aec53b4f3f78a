"""The bundled locustfile, and every request's start (the intended start in open loop) and response
time written to ``$SMLOAD_BENCH_RECORD_DIR/<pid>.csv`` when the process stops: the per-window
figures of bench_open_loop.py (overload honesty)."""

import os

from locust import events

from smload.locustfile import *  # noqa: F403 - the bundled user

_DIR = os.environ.get("SMLOAD_BENCH_RECORD_DIR")
_LINES: list[str] = []


@events.request.add_listener
def _record(request_type, name, response_time, start_time=None, **_kwargs):
    if _DIR and start_time is not None and response_time is not None:
        _LINES.append(f"{start_time:.6f},{response_time:.3f},{request_type}")


@events.test_stop.add_listener
def _flush(**_kwargs):
    if _DIR and _LINES:
        with open(os.path.join(_DIR, f"{os.getpid()}.csv"), "a") as out:
            out.write("\n".join(_LINES) + "\n")
        _LINES.clear()
