"""The exporter as a Locust plugin: its options (declared once, :mod:`smload.flags`, checked with
every other option before anything is spawned) and, at ``init`` on the master (or a local runner),
the ``/metrics`` server and the optional CloudWatch poller. Workers serve nothing: their requests
reach the master's measurements with their reports."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from smload import flags, usage

from .exposition import DEFAULT_MAX_NAMES

logger = logging.getLogger("smload.exporter")

DEFAULT_HOST = "127.0.0.1"  # a laptop keeps it to itself; containers pass --metrics-host 0.0.0.0
DEFAULT_PORT = 9646
DEFAULT_CLOUDWATCH_INTERVAL = 60.0
MIN_CLOUDWATCH_INTERVAL = 10.0
PROG = "locust"


def _option(flag: str, help: str, parse: flags.Parser | None = None, **kwargs: Any) -> flags.Option:
    return flags.Option(flag, help, parse, web_ui=False, **kwargs)  # they apply when the process starts


OPTIONS = (
    _option(
        "--metrics-host",
        "address the exporter listens on (in a container: 0.0.0.0)",
        default=DEFAULT_HOST,
        metavar="HOST",
    ),
    _option(
        "--metrics-port",
        "port of the exporter's /metrics; 0 turns the exporter off",
        flags.number(0, 65535, integer=True),
        default=DEFAULT_PORT,
        metavar="PORT",
    ),
    _option(
        "--metrics-max-names",
        "request names with their own series; later names are summed as '(other)'",
        flags.number(1, integer=True),
        default=DEFAULT_MAX_NAMES,
        metavar="N",
    ),
    _option(
        "--cloudwatch",
        "also export the endpoint's CloudWatch metrics and instance counts (sagemaker_*); "
        "needs --endpoint-name",
        switch=True,
    ),
    _option(
        "--cloudwatch-interval",
        "seconds between two CloudWatch polls (CloudWatch has 1-minute data)",
        flags.number(MIN_CLOUDWATCH_INTERVAL, unit="seconds"),
        default=DEFAULT_CLOUDWATCH_INTERVAL,
        metavar="SECONDS",
    ),
)

GROUP = flags.register(
    flags.Group(
        "exporter",
        "Prometheus exporter",
        "Metrics of the load test at /metrics on the master (sagemaker-loadtest).",
        OPTIONS,
        rank=90,
    )
)


@events.init.add_listener
def _on_init(environment: Environment, runner: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or runner is None or isinstance(runner, WorkerRunner):
        return
    try:
        settings = GROUP.parse(options)  # the core checked every group already; this one is cheap
        if settings["cloudwatch"] and not getattr(options, "endpoint_name", None):
            raise usage.UsageError(
                "--cloudwatch", "needs --endpoint-name, the endpoint whose metrics to poll"
            )
    except usage.UsageError as err:
        usage.exit_usage(err, PROG)
    if not settings["metrics_port"]:
        if settings["cloudwatch"]:
            logger.warning("--cloudwatch: nothing polled, the exporter is off (--metrics-port 0)")
        return
    collectors = []
    if settings["cloudwatch"]:
        from .cloudwatch import CloudWatchPoller

        poller = CloudWatchPoller.from_options(options, environment, settings["cloudwatch_interval"])
        poller.start()
        collectors.append(poller)
    start_server(
        environment,
        settings["metrics_host"],
        settings["metrics_port"],
        settings["metrics_max_names"],
        collectors,
    )


def start_server(environment: Environment, host: str, port: int, max_names: int, collectors=()) -> None:
    from .server import MetricsExporter, serve

    exporter = MetricsExporter(environment, max_names, collectors)
    try:
        serve(exporter, host, port)
    except OSError as err:
        if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
            usage.exit_usage(
                usage.UsageError(
                    "--metrics-host",
                    f"cannot listen on {host!r} ({err.strerror or err}): "
                    "give an address of this machine, or 0.0.0.0 for all",
                ),
                PROG,
            )
        usage.exit_usage(
            usage.UsageError(
                "--metrics-port",
                f"cannot listen on {host}:{port} ({err.strerror or err}): "
                "choose a free port, or 0 to turn the exporter off",
            ),
            PROG,
        )
    logger.info("Prometheus metrics at http://%s:%d/metrics", host or "0.0.0.0", port)
