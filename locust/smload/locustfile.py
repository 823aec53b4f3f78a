"""The bundled locustfile: zero code, configured by options alone (``smload run`` and ``smload
calibrate`` run it; ``locust -f locust/locustfile.py`` in a checkout too).

Every option is also a LOCUST_* environment variable, a locust.conf key and a web UI custom
parameter; docs/options.md lists them (``smload run --help`` cannot: Locust prints its help before it
loads a locustfile; ``smload calibrate --help`` prints them).
"""

from locust import task

from smload import SageMakerUser

__all__ = ["InvokeEndpointUser"]


class InvokeEndpointUser(SageMakerUser):
    """Invokes the endpoint back to back with the --payload bodies."""

    @task
    def invoke(self) -> None:
        self.client.invoke()
