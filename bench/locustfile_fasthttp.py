"""The baseline of ``bench/bench_core.py``: Locust's own FastHttpUser posting the same bytes as our
``fast`` client (path, headers, body), with a fixed, pre-computed Authorization header instead of
signing each request. The same plugin is loaded as in the bundled locustfile (the measurements record
every request; the exporter comes with it by entry point), so the comparison isolates the client."""

import os

from locust import task
from locust.contrib.fasthttp import FastHttpUser

import smload.run.hooks  # noqa: F401 - the plugin: the same per-request listeners as the bundled locustfile

ENDPOINT = os.environ["SMLOAD_BENCH_ENDPOINT"]
BODY = open(os.environ["SMLOAD_BENCH_PAYLOAD"], "rb").read()  # noqa: SIM115
HEADERS = {
    "Content-Type": "application/json",
    "X-Amz-Date": "20260101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDBENCHMARK0000000/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64,
}


class UnsignedInvoke(FastHttpUser):
    @task
    def invoke(self) -> None:
        self.client.post(
            f"/endpoints/{ENDPOINT}/invocations", data=BODY, headers=HEADERS, name=f"{ENDPOINT}/unsigned"
        )
