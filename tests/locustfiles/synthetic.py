"""A load test that sends nothing (tests only): each user fires Locust's ``request`` event with
latencies, sizes and failures drawn at random, and every process keeps its own record of exactly
what it fired, independently of the plumbing under test. At exit each process writes what it knows
to ``$SMLOAD_TEST_OUT``: workers (and a local runner) what they fired, the master (and a local
runner) the measurements' views and Locust's own totals. ``GET /smload-test/views`` shows the master's
views live.

Environment: ``SMLOAD_TEST_OUT`` (a directory), ``SYNTH_NAMES`` (request names, default 3),
``SYNTH_WAIT`` (seconds between two requests of a user, default 0.02).
"""

import json
import os
import random
from collections import defaultdict

from locust import User, constant, events, task
from locust.runners import WorkerRunner

import smload.run.hooks  # noqa: F401 - the plugin: the measurements under test, and the exporter
from smload.measure import store

OUT = os.environ["SMLOAD_TEST_OUT"]
NAMES = [f"synthetic/name-{i}" for i in range(int(os.environ.get("SYNTH_NAMES", "3")))]
ERRORS = ["ModelError(500)", "ModelError(503)", "ThrottlingException", "Timeout"]


class SyntheticError(Exception):
    """Its str() is the error type, as the core's client exceptions' are."""


def _empty():
    return {"requests": 0, "latencies": [], "bytes": 0, "failures": defaultdict(int)}


fired_lifetime = defaultdict(_empty)  # "request_type|name" -> what this process fired
fired_test = defaultdict(_empty)  # the same since this process's last test_start


def _record(key, response_time, length, error):
    for book in (fired_lifetime, fired_test):
        entry = book[key]
        entry["requests"] += 1
        if response_time is not None:
            entry["latencies"].append(response_time)
        entry["bytes"] += length
        if error:
            entry["failures"][error] += 1


class Synthetic(User):
    wait_time = constant(float(os.environ.get("SYNTH_WAIT", "0.02")))

    @task
    def fire(self):
        name = random.choice(NAMES)
        response_time = None if random.random() < 0.01 else random.lognormvariate(3.0, 0.6)
        length = random.randrange(0, 4096)
        error = random.choice(ERRORS) if random.random() < 0.05 else None
        _record(f"SYN|{name}", response_time, length, error)
        self.environment.events.request.fire(
            request_type="SYN",
            name=name,
            response_time=response_time,
            response_length=length,
            exception=SyntheticError(error) if error else None,
            context={},
        )


@events.test_start.add_listener
def _new_test(environment, **_kwargs):
    fired_test.clear()


def _views(environment):
    def wire(view):
        return {f"{identity.api}|{identity.name}": series.to_wire() for identity, series in view.items()}

    stats = environment.stats
    return {
        "lifetime": wire(store.of(environment).lifetime()),
        "test": wire(store.of(environment).test()),
        "locust": {
            "requests": stats.total.num_requests,
            "failures": stats.total.num_failures,
            "entries": {f"{e.method}|{e.name}": e.num_requests for e in stats.entries.values()},
        },
        "state": environment.runner.state,
    }


@events.init.add_listener
def _route(environment, web_ui=None, **_kwargs):
    if web_ui is not None:
        web_ui.app.add_url_rule("/smload-test/views", "smload_test_views", lambda: _views(environment))


@events.quitting.add_listener
def _dump(environment, **_kwargs):
    worker = isinstance(environment.runner, WorkerRunner)
    if environment.runner is None:
        return
    out = {"pid": os.getpid(), "fired_lifetime": fired_lifetime, "fired_test": fired_test}
    if not worker:
        out.update(_views(environment))
    role = "worker" if worker else "master"
    with open(os.path.join(OUT, f"{role}-{os.getpid()}.json"), "w") as f:
        json.dump(out, f)
