"""Instance counts from the SageMaker control plane (``DescribeEndpoint``), for the per-instance
recommendation (and autoscaling). The control plane is a different service from the runtime API that
``--endpoint-url`` names: botocore finds its URL itself (``AWS_ENDPOINT_URL_SAGEMAKER``, the
profile, else the region's public endpoint). The session is the load test's own, whose credentials
(``--role-arn`` included) the TestRun resolved.
"""

from __future__ import annotations

import os
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
    if host.endswith(_AWS_DOMAINS) or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    return str(url)


def describe_instances(session: Any, region: str, endpoint_name: str, runtime_url: str | None) -> dict[str, int]:
    """Per-variant ``CurrentInstanceCount``; raises UsageError (exit 2 before any load) when unknown."""
    custom = _custom_runtime_without_control_plane(runtime_url)
    if custom:
        raise UsageError("--instances", f"the runtime API is {custom}, whose control plane is unknown: give --instances N "
                                        "(or set AWS_ENDPOINT_URL_SAGEMAKER for DescribeEndpoint)")
    from botocore.config import Config

    client = session.create_client("sagemaker", region_name=region, config=Config(
        connect_timeout=5, read_timeout=15, retries={"total_max_attempts": 2}))
    try:
        described = client.describe_endpoint(EndpointName=endpoint_name)
    except Exception as err:  # ClientError, connection errors, expired credentials: all say the same to the user
        raise UsageError("--instances", f"DescribeEndpoint {endpoint_name!r} failed ({err}): give --instances N") from None
    counts = {v["VariantName"]: int(v["CurrentInstanceCount"])
              for v in described.get("ProductionVariants", []) if v.get("CurrentInstanceCount")}
    if not counts:
        raise UsageError("--instances", f"DescribeEndpoint {endpoint_name!r} shows no instance counts (a serverless "
                                        "endpoint?): give --instances N")
    return counts
