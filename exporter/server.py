"""``/metrics`` over HTTP from the master (or the local runner): a gevent WSGI server, so a scrape
is one more greenlet in Locust's own loop and reads the measurements without locks."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gevent.pywsgi import WSGIServer
from locust.env import Environment
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from smload.measure import store

from .exposition import RequestMetrics
from .runner_metrics import RunnerCollector

logger = logging.getLogger("smload.exporter")

INDEX = b"""<html><head><title>sagemaker-loadtest exporter</title></head>
<body><h1>sagemaker-loadtest exporter</h1><p><a href="metrics">/metrics</a></p></body></html>
"""


class MetricsExporter:
    """Everything ``/metrics`` shows: request metrics rendered by hand (many samples, see
    :mod:`.exposition`), the rest by prometheus_client collectors."""

    def __init__(self, environment: Environment, max_names: int, collectors: Iterable[Collector] = ()):
        self.environment = environment
        self.requests = RequestMetrics(max_names)
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)  # the master's own CPU and memory: process_*
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(RunnerCollector(environment))
        for collector in collectors:
            self.registry.register(collector)

    def render(self) -> bytes:
        lifetime = store.of(self.environment).lifetime()
        return generate_latest(self.registry) + self.requests.render(lifetime).encode()

    def wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"GET /metrics\n"]
        if path == "/metrics":
            try:
                body = self.render()
            except Exception:  # noqa: BLE001 - a scrape must never take the master down
                logger.exception("rendering /metrics failed")
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"rendering the metrics failed: see the master's log\n"]
            start_response(
                "200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [INDEX]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: the metrics are at /metrics\n"]


def serve(exporter: MetricsExporter, host: str, port: int) -> WSGIServer:
    """Bind now (an OSError names the problem) and serve from a greenlet."""
    server = WSGIServer((host, port), exporter.wsgi, log=None, error_log=logger)
    server.start()
    return server
