"""The bench's load (bench/bench_exporter.py): users that fire Locust's request event at a fixed
total rate over BENCH_NAMES request names, with lognormal latencies and 1% failures, and send
nothing - the master's work (worker reports, merging, /metrics) is what is measured, not a client's."""

import os
import random

from locust import User, constant_throughput, task

import smload.run.hooks  # noqa: F401 - the plugin: measurements, worker reports, and the exporter by entry point
from smload.errors import RequestFailure

NAMES = [f"bench-endpoint/variant-{i:02d}" for i in range(int(os.environ.get("BENCH_NAMES", "50")))]
USERS = int(os.environ.get("BENCH_USERS", "80"))
RATE = float(os.environ.get("BENCH_RATE", "2000"))  # requests/s, all users together


class Fire(User):
    wait_time = constant_throughput(RATE / USERS)

    @task
    def fire(self):
        failed = random.random() < 0.01
        self.environment.events.request.fire(
            request_type="InvokeEndpoint",
            name=random.choice(NAMES),
            response_time=random.lognormvariate(3.5, 0.5),
            response_length=256,
            exception=RequestFailure("ModelError(500)") if failed else None,
            context={},
        )
