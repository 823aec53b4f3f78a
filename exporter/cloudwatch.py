"""The endpoint's side, from CloudWatch (``--cloudwatch``): every ``--cloudwatch-interval`` seconds
(60 by default: SageMaker publishes 1-minute data), one ``GetMetricData`` call for every variant of
``--endpoint-name`` and one ``DescribeEndpoint`` for its instance counts, exported by the master as
``sagemaker_*`` gauges - so that autoscaling and the endpoint's own latency show next to the load.

Each gauge is the latest 1-minute datapoint CloudWatch has (they arrive a minute or two late); a
metric without a datapoint in the last 10 minutes has no series. Latencies come in microseconds
and are exported in seconds. AWS errors (no permission, no such endpoint, no credentials) are
logged once per kind, clearly, and never stop the load test; ``sagemaker_cloudwatch_up`` says
whether the last poll worked. Credentials, region and ``--role-arn`` are the load test's own
(botocore's chain). Needs ``cloudwatch:GetMetricData`` and ``sagemaker:DescribeEndpoint``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent
from botocore.config import Config
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger("smload.exporter.cloudwatch")

LOOKBACK = timedelta(minutes=10)
PERIOD_S = 60


@dataclass(frozen=True)
class Query:
    namespace: str
    metric: str
    stat: str
    family: str
    labels: tuple[tuple[str, str], ...] = ()  # extra labels, e.g. (("statistic", "p99"),)
    divisor: float = 1.0  # CloudWatch's unit -> ours


def _latency(metric: str, family: str) -> list[Query]:
    return [
        Query("AWS/SageMaker", metric, stat, family, (("statistic", label),), 1e6)  # microseconds
        for stat, label in (("Average", "average"), ("p99", "p99"))
    ]


QUERIES: list[Query] = [
    *_latency("ModelLatency", "sagemaker_model_latency_seconds"),
    *_latency("OverheadLatency", "sagemaker_overhead_latency_seconds"),
    Query("AWS/SageMaker", "Invocations", "Sum", "sagemaker_invocations"),
    Query("AWS/SageMaker", "InvocationsPerInstance", "Sum", "sagemaker_invocations_per_instance"),
    Query("AWS/SageMaker", "Invocation4XXErrors", "Sum", "sagemaker_invocation_errors", (("class", "4xx"),)),
    Query("AWS/SageMaker", "Invocation5XXErrors", "Sum", "sagemaker_invocation_errors", (("class", "5xx"),)),
    Query("/aws/sagemaker/Endpoints", "CPUUtilization", "Average", "sagemaker_cpu_utilization_percent"),
    Query("/aws/sagemaker/Endpoints", "MemoryUtilization", "Average", "sagemaker_memory_utilization_percent"),
    Query("/aws/sagemaker/Endpoints", "GPUUtilization", "Average", "sagemaker_gpu_utilization_percent"),
    Query(
        "/aws/sagemaker/Endpoints",
        "GPUMemoryUtilization",
        "Average",
        "sagemaker_gpu_memory_utilization_percent",
    ),
]

# Percentiles in a call of their own: where they are not available, the rest still is.
STATISTICS = [q for q in QUERIES if not q.stat.startswith("p")]
PERCENTILES = [q for q in QUERIES if q.stat.startswith("p")]

HELP = {
    "sagemaker_model_latency_seconds": "CloudWatch ModelLatency: time the model took (average, p99 over 1 minute)",
    "sagemaker_overhead_latency_seconds": "CloudWatch OverheadLatency: time SageMaker added around the model",
    "sagemaker_invocations": "CloudWatch Invocations: requests the endpoint served in 1 minute",
    "sagemaker_invocations_per_instance": "CloudWatch InvocationsPerInstance: invocations per instance in 1 minute (the autoscaling metric)",
    "sagemaker_invocation_errors": "CloudWatch Invocation4XXErrors/Invocation5XXErrors in 1 minute",
    "sagemaker_cpu_utilization_percent": "CloudWatch CPUUtilization (summed over cores: up to 100 x cores)",
    "sagemaker_memory_utilization_percent": "CloudWatch MemoryUtilization",
    "sagemaker_gpu_utilization_percent": "CloudWatch GPUUtilization (summed over GPUs: up to 100 x GPUs)",
    "sagemaker_gpu_memory_utilization_percent": "CloudWatch GPUMemoryUtilization (summed over GPUs)",
    # Not "_count": promtool reserves the suffix for histograms and summaries.
    "sagemaker_instances": "DescribeEndpoint CurrentInstanceCount of each production variant",
}

Sample = tuple[str, dict[str, str], float]  # family, labels, value


def describe(err: Exception) -> tuple[str, str]:
    """An AWS error as (kind, one line): botocore's error code and message; from a body it could not
    parse (an HTML page, another protocol's XML) the code and message found in it, else its text."""
    response = getattr(err, "response", None)  # botocore's ClientError
    if not isinstance(response, dict):
        return type(err).__name__, (str(err).splitlines() or [""])[0][:300]
    error = response.get("Error", {})
    kind, message = str(error.get("Code") or type(err).__name__), str(error.get("Message") or err)
    if "<" in message:
        code = re.search(r"<Code>([^<]+)</Code>", message)
        text = re.search(r"<Message>([^<]+)</Message>", message)
        kind = code.group(1) if code else kind
        message = text.group(1) if text else " ".join(re.sub(r"<[^>]+>", " ", message).split())
    return kind, message[:300].rstrip(".")


class CloudWatchPoller(Collector):
    """Polls in a greenlet of the master; :meth:`collect` exports the last poll's values."""

    def __init__(
        self,
        endpoint_name: str,
        interval: float,
        clients: Callable[[], tuple[Any, Any]],
        known_variants: Callable[[], set[str]] = set,
    ):
        self.endpoint_name = endpoint_name
        self.interval = interval
        self._make_clients = clients  # () -> (sagemaker client, cloudwatch client), made on first poll
        self._clients: tuple[Any, Any] | None = None
        self.known_variants = known_variants  # variants the load test has seen (when DescribeEndpoint fails)
        self.samples: list[Sample] = []
        self.up = 0
        self.polls = 0
        self._failing: dict[str, str] = {}  # operation -> the error last logged for it

    @classmethod
    def from_options(
        cls, options: Any, environment: Any = None, interval: float | None = None
    ) -> CloudWatchPoller:
        """``interval``: the checked --cloudwatch-interval (the exporter's option group parses it)."""

        def clients() -> tuple[Any, Any]:
            from smload.invoke import aws

            region = getattr(options, "region", None) or aws.default_region(aws.session())
            if not region:
                raise RuntimeError("no AWS region: give --region (or AWS_DEFAULT_REGION)")
            sessions = aws.Sessions.of(environment) if environment is not None else aws.Sessions()
            sess, _credentials = sessions.get(region, getattr(options, "role_arn", None) or None)
            config = Config(
                connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 2}
            )
            return tuple(
                sess.create_client(service, region_name=region, config=config)
                for service in ("sagemaker", "cloudwatch")
            )

        def known_variants() -> set[str]:
            if environment is None:
                return set()
            from smload.measure import store
            from smload.record import UNKNOWN

            return {
                identity.target
                for identity in store.of(environment).lifetime()
                if identity.endpoint == options.endpoint_name and identity.target not in (None, UNKNOWN)
            }

        return cls(
            options.endpoint_name, float(interval or options.cloudwatch_interval), clients, known_variants
        )

    def start(self) -> gevent.Greenlet:
        return gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            self.poll()
            gevent.sleep(self.interval)

    # --- one poll -------------------------------------------------------------------------------------
    def poll(self, now: datetime | None = None) -> None:
        """One round: never raises; what failed is logged (once) and left without series."""
        self.polls += 1
        clients = self._clients = self._clients or self._call("setup", self._make_clients)
        if clients is None:  # no credentials, no region, ...: said so; the test goes on
            self.samples, self.up = [], 0
            return
        sagemaker, cloudwatch = clients
        now = now or datetime.now(UTC)
        samples: list[Sample] = []
        variants = set(self.known_variants())
        described = self._call(
            "DescribeEndpoint", lambda: sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        )
        for variant in (described or {}).get("ProductionVariants", []):
            variants.add(variant["VariantName"])
            if "CurrentInstanceCount" in variant:  # serverless variants have none
                samples.append(
                    (
                        "sagemaker_instances",
                        self._labels(variant["VariantName"]),
                        float(variant["CurrentInstanceCount"]),
                    )
                )
        statistics = self._call(
            "GetMetricData", lambda: self._metric_data(cloudwatch, sorted(variants), STATISTICS, now)
        )
        if statistics is not None:
            samples += statistics
            # p99 "where available": in a call of its own, whose failure loses the p99 series only
            samples += (
                self._call(
                    "GetMetricData (percentiles)",
                    lambda: self._metric_data(cloudwatch, sorted(variants), PERCENTILES, now),
                )
                or []
            )
        self.samples, self.up = samples, int(described is not None and statistics is not None)

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        """``call()``, or None when it raised: logged once per kind of failure, and once when it works again."""
        try:
            result = call()
        except Exception as err:  # noqa: BLE001 - whatever AWS or botocore raises, the load test goes on
            self._failed(operation, err)
            return None
        self._worked(operation)
        return result

    def _labels(self, variant: str) -> dict[str, str]:
        return {"endpoint": self.endpoint_name, "variant": variant}

    def _metric_data(
        self, cloudwatch: Any, variants: list[str], wanted_queries: list[Query], now: datetime
    ) -> list[Sample]:
        if not variants:
            return []
        wanted: dict[str, tuple[Query, str]] = {}
        queries = []
        for v, variant in enumerate(variants):
            for q, query in enumerate(wanted_queries):
                query_id = f"v{v}q{q}"
                wanted[query_id] = (query, variant)
                dimensions = [
                    {"Name": "EndpointName", "Value": self.endpoint_name},
                    {"Name": "VariantName", "Value": variant},
                ]
                queries.append(
                    {
                        "Id": query_id,
                        "ReturnData": True,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": query.namespace,
                                "MetricName": query.metric,
                                "Dimensions": dimensions,
                            },
                            "Period": PERIOD_S,
                            "Stat": query.stat,
                        },
                    }
                )
        samples: list[Sample] = []
        for start in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            kwargs = {
                "MetricDataQueries": queries[start : start + 500],
                "StartTime": now - LOOKBACK,
                "EndTime": now,
                "ScanBy": "TimestampDescending",
            }
            while True:
                page = cloudwatch.get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    values = [v for v in result.get("Values", []) if v is not None]
                    if not values:
                        continue
                    query, variant = wanted[result["Id"]]
                    labels = self._labels(variant) | dict(query.labels)
                    samples.append((query.family, labels, values[0] / query.divisor))  # newest first
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return samples

    # --- errors: once per kind --------------------------------------------------------------------------
    def _failed(self, operation: str, err: Exception) -> None:
        kind, message = describe(err)
        if self._failing.get(operation) == kind:
            return
        self._failing[operation] = kind
        need = "sagemaker:DescribeEndpoint" if operation == "DescribeEndpoint" else "cloudwatch:GetMetricData"
        hint = (
            f" (the poller needs {need})" if "denied" in f"{kind} {message}".lower() or "403" in kind else ""
        )
        logger.error(
            "CloudWatch poller: %s for endpoint %r failed: %s: %s%s. The load test goes on; the sagemaker_* "
            "metrics it feeds stay empty until it works (logged once).",
            operation,
            self.endpoint_name,
            kind,
            message,
            hint,
        )

    def _worked(self, operation: str) -> None:
        if self._failing.pop(operation, None) is not None:
            logger.info("CloudWatch poller: %s for endpoint %r works again", operation, self.endpoint_name)

    # --- Prometheus -----------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for family, labels, value in self.samples:
            gauge = families.get(family)
            if gauge is None:
                gauge = families[family] = GaugeMetricFamily(family, HELP[family], labels=list(labels))
            gauge.add_metric(list(labels.values()), value)
        yield from families.values()
        up = GaugeMetricFamily(
            "sagemaker_cloudwatch_up",
            "1 when the last CloudWatch poll worked (DescribeEndpoint and GetMetricData)",
        )
        up.add_metric([], self.up)
        yield up
        polls = CounterMetricFamily(
            "sagemaker_cloudwatch_polls", "CloudWatch polls done since the master started"
        )
        polls.add_metric([], self.polls)
        yield polls
