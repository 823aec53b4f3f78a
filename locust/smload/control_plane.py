"""Instance counts from the SageMaker control plane (``DescribeEndpoint``), for the per-instance
recommendation. The control plane is a different service from the runtime API that ``--endpoint-url``
names: botocore finds its URL itself (``AWS_ENDPOINT_URL_SAGEMAKER``, the profile, else the
region's public endpoint). Credentials and ``--role-arn`` are the load test's own.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from .calibration import Instances
from .usage import UsageError

_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def _custom_runtime_without_control_plane(options: Any) -> str | None:
    """A runtime URL outside AWS (an emulator, a proxy) says nothing about where its control plane is;
    calling the public one would describe some other endpoint, or leave the machine for nothing."""
    url = getattr(options, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
    if not url:
        return None
    host = urlsplit(str(url)).hostname or ""
    if host.endswith(_AWS_DOMAINS) or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    return str(url)


def describe_instances(options: Any) -> Instances:
    """Per-variant ``CurrentInstanceCount``; raises UsageError (exit 2 before any load) when unknown."""
    custom = _custom_runtime_without_control_plane(options)
    if custom:
        raise UsageError("--instances", f"the runtime API is {custom}, whose control plane is unknown: give --instances N "
                                        "(or set AWS_ENDPOINT_URL_SAGEMAKER for DescribeEndpoint)")
    from botocore.config import Config

    from . import aws

    session = aws.session()
    region = getattr(options, "region", None) or aws.default_region(session)
    if not region:
        raise UsageError("--region", "no region for DescribeEndpoint: give --region or --instances N")
    aws.credentials(session, region, getattr(options, "role_arn", None))
    client = session.create_client("sagemaker", region_name=region, config=Config(
        connect_timeout=5, read_timeout=15, retries={"total_max_attempts": 2}))
    name = options.endpoint_name
    try:
        described = client.describe_endpoint(EndpointName=name)
    except Exception as err:  # ClientError, connection errors, expired credentials: all say the same to the user
        raise UsageError("--instances", f"DescribeEndpoint {name!r} failed ({err}): give --instances N") from None
    counts = {v["VariantName"]: int(v["CurrentInstanceCount"])
              for v in described.get("ProductionVariants", []) if v.get("CurrentInstanceCount")}
    if not counts:
        raise UsageError("--instances", f"DescribeEndpoint {name!r} shows no instance counts (a serverless endpoint?): "
                                        "give --instances N")
    return Instances("DescribeEndpoint", per_variant=counts)
