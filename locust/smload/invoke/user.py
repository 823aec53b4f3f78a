"""``SageMakerUser``: the abstract Locust User whose ``self.client`` invokes a SageMaker endpoint.

    from locust import task
    from smload import SageMakerUser

    class MyUser(SageMakerUser):
        @task
        def invoke(self):
            self.client.invoke()                       # the next --payload body
            self.client.invoke(b'{"inputs": "hi"}', target_variant="variant-b")

Everything else (endpoint, region, credentials, payloads, client) comes from the options. Import it
from ``smload`` (as above): that also loads the plugin (:mod:`smload.run.hooks`) which checks the
options and builds each test's Runtime.
"""

from __future__ import annotations

from typing import Any

from locust import User

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
