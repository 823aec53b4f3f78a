"""The latency-honesty run of ``bench/bench_core.py``: the bundled user, each paced at
SMLOAD_BENCH_USER_RPS requests per second (Locust's constant_throughput), so that the load is a
chosen fraction of what one worker can do."""

import os

from locust import constant_throughput, task

from smload import SageMakerUser


class PacedInvoke(SageMakerUser):
    wait_time = constant_throughput(float(os.environ["SMLOAD_BENCH_USER_RPS"]))

    @task
    def invoke(self) -> None:
        self.client.invoke()
