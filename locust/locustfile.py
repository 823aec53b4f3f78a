"""The bundled locustfile: zero code, configured by options alone.

    locust -f locust/locustfile.py --endpoint-name my-endpoint --region us-east-1 --payload payloads/

Every option is also a LOCUST_* environment variable, a locust.conf key and a web UI custom
parameter; ``locust -f locust/locustfile.py --help`` lists them under "SageMaker endpoint".
"""

from locust import task

import smload.exporter  # noqa: F401 - the Prometheus exporter plugin (serves /metrics from the master)
import smload.exporter.latency  # noqa: F401 - exact merged histograms: the summary's percentiles
from smload import SageMakerUser


class InvokeEndpointUser(SageMakerUser):
    """Invokes the endpoint back to back with the --payload bodies."""

    @task
    def invoke(self) -> None:
        self.client.invoke()
