"""``SageMakerUser``: the abstract Locust User whose ``self.client`` invokes a SageMaker endpoint.

    from locust import task
    from smload import SageMakerUser

    class MyUser(SageMakerUser):
        @task
        def invoke(self):
            self.client.invoke()                       # the next --payload body
            self.client.invoke(b'{"inputs": "hi"}', target_variant="variant-b")

Everything else (endpoint, region, credentials, payloads, client) comes from the options. In open
loop (``--arrival-rate``) each user is an *executor*: it runs one task per arrival the scheduler hands
it (its own ``wait_time`` is replaced by the wait for the next arrival; ``on_start`` runs first), and
the first invocation of that task is timed from the arrival's intended start. Import it
from ``smload`` (as above): that also loads the plugin (:mod:`smload.run.hooks`) which checks the
options and builds each test's Runtime.
"""

from __future__ import annotations

from typing import Any

from locust import User
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from .client import RefusingClient, SageMakerClient, runtime_of


class SageMakerUser(User):
    """Abstract, like Locust's ``FastHttpUser``: subclass it and add tasks. Each user keeps one
    keep-alive connection (``--client fast``) or shares the process's boto3 client (``--client boto3``)."""

    abstract = True

    def __init__(self, environment: Any):
        super().__init__(environment)
        runtime = runtime_of(environment)
        self.client: SageMakerClient | RefusingClient = (
            SageMakerClient(runtime, self) if runtime is not None else RefusingClient()
        )
        self.intended_start: float | None = None  # open loop: the current arrival's, until its first request
        pacer = runtime.pacer if runtime is not None else None
        if pacer is not None:  # instance attributes: they win over the locustfile's class attributes
            self._pacer = pacer
            own_on_start = self.on_start

            def on_start() -> None:
                own_on_start()
                self._next_arrival()

            self.on_start = on_start  # type: ignore[method-assign]
            self.wait_time = self._next_arrival  # type: ignore[method-assign]

    def _next_arrival(self) -> float:
        """Wait, idle and stoppable like any waiting user, until the scheduler hands this executor an
        arrival; then run the next task at once."""
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        state, self._state = self._state, LOCUST_STATE_WAITING
        self.intended_start = self._pacer.wait()
        self._state = LOCUST_STATE_RUNNING if state != LOCUST_STATE_WAITING else state
        return 0.0
