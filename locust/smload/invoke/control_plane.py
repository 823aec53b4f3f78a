"""Instance counts and variant weights from the SageMaker control plane (``DescribeEndpoint``), for
the per-instance recommendation (and autoscaling) and the A/B traffic split check; an emulator's
weights from its own ``GET /_emulator/config``. The control plane is a different service from the runtime API that
``--endpoint-url`` names: botocore finds its URL itself (``AWS_ENDPOINT_URL_SAGEMAKER``, the
profile, else the region's public endpoint). The session is the load test's own, whose credentials
(``--role-arn`` included) the TestRun resolved.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from smload.usage import UsageError

_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def _custom_runtime_without_control_plane(url: str | None) -> str | None:
    """A runtime URL outside AWS (an emulator, a proxy) says nothing about where its control plane is;
    calling the public one would describe some other endpoint, or leave the machine for nothing."""
    url = url or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
    if not url:
        return None
    host = urlsplit(str(url)).hostname or ""
    if (
        host.endswith(_AWS_DOMAINS)
        or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER")
        or os.environ.get("AWS_ENDPOINT_URL")
    ):
        return None
    return str(url)


def describe_instances(
    session: Any, region: str, endpoint_name: str, runtime_url: str | None
) -> dict[str, int]:
    """Per-variant ``CurrentInstanceCount``; raises UsageError (exit 2 before any load) when unknown."""
    custom = _custom_runtime_without_control_plane(runtime_url)
    if custom:
        raise UsageError(
            "--instances",
            f"the runtime API is {custom}, whose control plane is unknown: give --instances N "
            "(or set AWS_ENDPOINT_URL_SAGEMAKER for DescribeEndpoint)",
        )
    try:
        described = _describe(session, region, endpoint_name)
    except (
        Exception
    ) as err:  # ClientError, connection errors, expired credentials: all say the same to the user
        raise UsageError(
            "--instances", f"DescribeEndpoint {endpoint_name!r} failed ({err}): give --instances N"
        ) from None
    counts = {
        v["VariantName"]: int(v["CurrentInstanceCount"])
        for v in described.get("ProductionVariants", [])
        if v.get("CurrentInstanceCount")
    }
    if not counts:
        raise UsageError(
            "--instances",
            f"DescribeEndpoint {endpoint_name!r} shows no instance counts (a serverless "
            "endpoint?): give --instances N",
        )
    return counts


def _describe(session: Any, region: str, endpoint_name: str) -> dict:
    from botocore.config import Config

    client = session.create_client(
        "sagemaker",
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=15, retries={"total_max_attempts": 2}),
    )
    return client.describe_endpoint(EndpointName=endpoint_name)


def variant_weights(session: Any, settings: Any) -> tuple[dict[str, float], str]:
    """Each production variant's configured weight, and where it was read: the emulator's
    configuration when the runtime URL is outside AWS (and no control plane URL is set), else
    DescribeEndpoint's ``CurrentWeight``. Raises LookupError saying why it is unknown."""
    if _custom_runtime_without_control_plane(settings.endpoint_url):
        return _emulator_weights(settings), "the emulator's configuration"
    try:
        described = _describe(session, settings.region, settings.endpoint_name)
    except Exception as err:  # ClientError (no sagemaker:DescribeEndpoint permission), connection errors
        raise LookupError(f"DescribeEndpoint {settings.endpoint_name!r} failed ({err})") from None
    weights = {
        v["VariantName"]: float(v["CurrentWeight"])
        for v in described.get("ProductionVariants", [])
        if v.get("CurrentWeight") is not None
    }
    if not weights:
        raise LookupError(f"DescribeEndpoint {settings.endpoint_name!r} shows no variant weights")
    return weights, "DescribeEndpoint (CurrentWeight)"


def _emulator_weights(settings: Any) -> dict[str, float]:
    """The weights in ``GET /_emulator/config`` of the emulator behind the runtime URL."""
    url = f"{settings.scheme}://{settings.host}:{settings.port}{settings.path_prefix}/_emulator/config"
    try:
        # no proxy: the requests of the test did not go through one either
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as response:
            config = json.loads(response.read())
        endpoints = {e["name"]: e for e in config["endpoints"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise LookupError(
            f"{settings.endpoint_url} is not an smload emulator (GET /_emulator/config: {err})"
        ) from None
    endpoint = endpoints.get(settings.endpoint_name)
    if endpoint is None:
        raise LookupError(
            f"the emulator at {settings.endpoint_url} has no endpoint {settings.endpoint_name!r}"
        )
    return {v["name"]: float(v.get("weight", 1.0)) for v in endpoint.get("variants", [])}
