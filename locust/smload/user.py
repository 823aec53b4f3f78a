"""``SageMakerUser``: the abstract Locust User whose ``self.client`` invokes a SageMaker endpoint.

    from locust import task
    from smload import SageMakerUser

    class MyUser(SageMakerUser):
        @task
        def invoke(self):
            self.client.invoke()                       # the next --payload body
            self.client.invoke(b'{"inputs": "hi"}', target_variant="variant-b")

Everything else (endpoint, region, credentials, payloads, client) comes from the options.
"""

from __future__ import annotations

from typing import Any

from locust import User

from . import plugin  # noqa: F401 - registers the options, checks and summary with Locust
from .client import RefusingClient, SageMakerClient


class SageMakerUser(User):
    """Abstract, like Locust's ``FastHttpUser``: subclass it and add tasks. Each user keeps one
    keep-alive connection (``--client fast``) or shares the process's boto3 client (``--client boto3``)."""

    abstract = True

    def __init__(self, environment: Any):
        super().__init__(environment)
        runtime = plugin.runtime_for(environment)
        self.client: SageMakerClient | RefusingClient = (
            SageMakerClient(runtime, self) if runtime is not None else RefusingClient()
        )
