"""Loaded next to the bundled locustfile in the master of ``bench/bench_master_scale.py``
(``-f locust/locustfile.py,bench/master_scale_probe.py``): times, inside the master and without
changing the product, what the master does per message, and writes the running totals to the file
named by SMLOAD_BENCH_PROBE every 0.5 s (one JSON line each: count, CPU seconds, the longest one
since the line before), with the runner's state and workers.

CPU time of the master's thread (``time.thread_time``, immune to being preempted on a shared core),
per kind:

* ``decode``: Locust's msgpack decoding of every message from a worker (``Message.unserialize``);
* ``message:<type>``: the master's handling of each message type (``MasterRunner.handle_message``);
  for ``stats`` that is every ``worker_report`` listener: Locust's stats, its user counts and ours;
* ``fold``: ours alone, inside ``message:stats`` (``Measurements.fold_report``);
* ``render``: building the body of one ``/metrics`` scrape (``MetricsExporter.render``).

No User class here: the master runs the bundled locustfile's.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

import gevent
from locust import events
from locust.rpc import protocol
from locust.runners import MasterRunner

from smload.exporter import server as exporter_server
from smload.measure import store

OUT = os.environ.get("SMLOAD_BENCH_PROBE")
# kind -> [count, CPU seconds, longest one since the line before]
totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])


def _add(entry: list[float], seconds: float) -> None:
    entry[0] += 1
    entry[1] += seconds
    entry[2] = max(entry[2], seconds)


def _timed(kind_of, function):
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _add(totals[kind_of(args)], time.thread_time() - start)

    return timed


_unserialize = protocol.Message.unserialize.__func__


def _decode(cls, data):
    start = time.thread_time()
    message = _unserialize(cls, data)
    _add(totals["decode"], time.thread_time() - start)
    return message


if OUT:
    protocol.Message.unserialize = classmethod(_decode)
    MasterRunner.handle_message = _timed(lambda args: f"message:{args[2].type}", MasterRunner.handle_message)
    store.Measurements.fold_report = _timed(lambda args: "fold", store.Measurements.fold_report)
    exporter_server.MetricsExporter.render = _timed(
        lambda args: "render", exporter_server.MetricsExporter.render
    )


def _write(environment) -> None:
    with open(OUT, "a") as out:
        while True:
            runner = environment.runner
            out.write(
                json.dumps(
                    {
                        "t": time.time(),
                        "state": runner.state,
                        "workers": runner.worker_count,
                        "users": runner.user_count,
                        "totals": totals,
                    }
                )
                + "\n"
            )
            out.flush()
            for entry in totals.values():
                entry[2] = 0.0
            gevent.sleep(0.5)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    if OUT and isinstance(environment.runner, MasterRunner):
        gevent.spawn(_write, environment)
