"""The exporter as a Locust plugin: its options, their checks, and at ``init`` on the master (or a
local runner) the ``/metrics`` server and the optional CloudWatch poller. Workers serve nothing:
they only feed the latency plumbing (:mod:`.latency`)."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from smload import usage

from . import latency
from .exposition import DEFAULT_MAX_NAMES

logger = logging.getLogger("smload.exporter")

DEFAULT_HOST = "127.0.0.1"  # a laptop keeps it to itself; containers pass --metrics-host 0.0.0.0
DEFAULT_PORT = 9646
DEFAULT_CLOUDWATCH_INTERVAL = 60.0
MIN_CLOUDWATCH_INTERVAL = 10.0
PROG = "locust"


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group(
        "Prometheus exporter", "Metrics of the load test at /metrics on the master (sagemaker-loadtest)."
    )

    def option(flag: str, **kwargs: Any) -> None:
        # In a group, hence not in the web UI's form: these apply when the process starts.
        env = "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()
        group.add_argument(flag, env_var=env, **kwargs)

    option("--metrics-host", default=DEFAULT_HOST, metavar="HOST",
           help=f"address the exporter listens on; default {DEFAULT_HOST} (in a container: 0.0.0.0)")
    option("--metrics-port", type=int, default=DEFAULT_PORT, metavar="PORT",
           help=f"port of the exporter's /metrics; default {DEFAULT_PORT}; 0 turns the exporter off")
    option("--metrics-max-names", type=int, default=DEFAULT_MAX_NAMES, metavar="N",
           help=f"request names with their own series; later names are summed as '(other)'; default {DEFAULT_MAX_NAMES}")
    option("--cloudwatch", action="store_true", default=False,
           help="also export the endpoint's CloudWatch metrics and instance counts (sagemaker_*); needs --endpoint-name")
    option("--cloudwatch-interval", type=float, default=DEFAULT_CLOUDWATCH_INTERVAL, metavar="SECONDS",
           help=f"seconds between two CloudWatch polls; default {DEFAULT_CLOUDWATCH_INTERVAL:g}")


@usage.validator
def check_exporter_options(options: Any) -> None:
    port = getattr(options, "metrics_port", DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise usage.UsageError("--metrics-port", f"{port} is not a port: give 1-65535, or 0 to turn the exporter off")
    if getattr(options, "metrics_max_names", DEFAULT_MAX_NAMES) < 1:
        raise usage.UsageError("--metrics-max-names", "give at least 1")
    if getattr(options, "cloudwatch", False):
        if not getattr(options, "endpoint_name", None):
            raise usage.UsageError("--cloudwatch", "needs --endpoint-name, the endpoint whose metrics to poll")
        interval = getattr(options, "cloudwatch_interval", DEFAULT_CLOUDWATCH_INTERVAL)
        if not interval >= MIN_CLOUDWATCH_INTERVAL:
            raise usage.UsageError(
                "--cloudwatch-interval", f"give at least {MIN_CLOUDWATCH_INTERVAL:g} seconds (CloudWatch has 1-minute data)"
            )


@events.init.add_listener
def _on_init(environment: Environment, runner: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or runner is None or isinstance(runner, WorkerRunner):
        return
    latency.attach(environment)
    try:
        check_exporter_options(options)
    except usage.UsageError as err:
        usage.exit_usage(err, PROG)
    if not options.metrics_port:
        if options.cloudwatch:
            logger.warning("--cloudwatch: nothing polled, the exporter is off (--metrics-port 0)")
        return
    collectors = []
    if options.cloudwatch:
        from .cloudwatch import CloudWatchPoller

        poller = CloudWatchPoller.from_options(options, environment)
        poller.start()
        collectors.append(poller)
    start_server(environment, options.metrics_host, options.metrics_port, options.metrics_max_names, collectors)


def start_server(environment: Environment, host: str, port: int, max_names: int, collectors=()) -> None:
    from .server import MetricsExporter, serve

    exporter = MetricsExporter(environment, max_names, collectors)
    try:
        serve(exporter, host, port)
    except OSError as err:
        if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
            usage.exit_usage(usage.UsageError("--metrics-host", f"cannot listen on {host!r} ({err.strerror or err}): "
                                              "give an address of this machine, or 0.0.0.0 for all"), PROG)
        usage.exit_usage(usage.UsageError("--metrics-port", f"cannot listen on {host}:{port} ({err.strerror or err}): "
                                          "choose a free port, or 0 to turn the exporter off"), PROG)
    logger.info("Prometheus metrics at http://%s:%d/metrics", host or "0.0.0.0", port)
