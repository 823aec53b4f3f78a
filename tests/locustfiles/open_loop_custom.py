"""A custom locustfile run open loop (tests only): its own task at a rate with no new API, and its
own rate over time as a ``RateShape``. Each arrival's task invokes twice: a response stream (the
first invocation: timed from the intended start) and a plain invocation of another variant."""

from locust import constant, task

from smload import RateShape, SageMakerUser


class TwoCalls(SageMakerUser):
    wait_time = constant(30)  # replaced by the wait for the next arrival in open loop

    @task
    def both(self) -> None:
        self.client.invoke(stream=True, target_variant="va")
        self.client.invoke(target_variant="vb")


class Steps(RateShape):
    """60 req/s for 3 s, then 150 req/s for 3 s, then the end of the test."""

    def rate(self, run_time):
        if run_time < 3:
            return 60
        if run_time < 6:
            return 150
        return None
