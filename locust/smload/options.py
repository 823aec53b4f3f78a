"""The load test's options (Locust options: command line, ``LOCUST_*`` environment variables,
``locust.conf``, the web UI's custom parameters) and :func:`settings_from`, which turns parsed
options into checked :class:`Settings` or raises :class:`~smload.usage.UsageError`.

No Locust import here (the parser is handed in), botocore only inside functions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import payloads
from .usage import MissingOption, UsageError

CLIENTS = ("fast", "boto3")
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds; SageMaker itself gives a model 60 s to answer
DEFAULT_CONNECT_TIMEOUT = 10.0

_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")  # endpoint, variant and container names (max 63)
_COMPONENT = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")  # ASCII without control characters: safe in a header
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


def add_arguments(parser: Any) -> None:
    """Add the ``SageMaker endpoint`` option group to Locust's parser."""
    group = parser.add_argument_group(
        "SageMaker endpoint", "What to invoke and how (sagemaker-loadtest). Each option is also a LOCUST_* variable."
    )

    def option(flag: str, is_required: bool = False, **kwargs: Any) -> None:
        env = "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()
        action = group.add_argument(flag, env_var=env, **kwargs)
        # what LocustArgumentParser.add_argument sets, which an argument group's add_argument does not:
        # without it the option would not be among the web UI's custom parameters
        action.include_in_web_ui = True
        action.is_secret = False
        action.is_required = is_required
        action.is_multiple = False

    option("--endpoint-name", metavar="NAME", is_required=True,
           help="SageMaker endpoint to invoke (required)")
    option("--region", metavar="REGION",
           help="AWS region; default: the botocore chain (AWS_DEFAULT_REGION, AWS_REGION, the profile's region)")
    option("--endpoint-url", metavar="URL",
           help="runtime API URL; default: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, else https://runtime.sagemaker.<region>.amazonaws.com")
    option("--payload", metavar="PATH", is_required=True,
           help="request bodies: a file, a directory (each file one body) or a .jsonl file (each line one body) (required)")
    option("--payload-order", choices=payloads.ORDERS, default="random",
           help="order in which bodies are sent: random (default) or round-robin")
    option("--payload-seed", type=int, metavar="N",
           help="seed for --payload-order random (each worker derives its own sequence from it)")
    option("--content-type", metavar="TYPE",
           help="Content-Type of every body; default: by file extension (.json application/json, .csv text/csv, ...), application/json for .jsonl lines")
    option("--accept", metavar="TYPE", help="Accept header (the response type to ask for); default: none")
    option("--custom-attributes", metavar="TEXT", help="X-Amzn-SageMaker-Custom-Attributes header")
    option("--target-variant", metavar="VARIANT", help="invoke this production variant only (X-Amzn-SageMaker-Target-Variant)")
    option("--target-model", metavar="MODEL", help="multi-model endpoints: the model to invoke (X-Amzn-SageMaker-Target-Model)")
    option("--target-container-hostname", metavar="HOST", help="multi-container endpoints: the container to invoke")
    option("--inference-component", metavar="NAME", help="the inference component to invoke")
    option("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT, metavar="SECONDS",
           help=f"seconds to wait for each read of the response (like botocore's read_timeout); default {DEFAULT_REQUEST_TIMEOUT:g}")
    option("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT, metavar="SECONDS",
           help=f"seconds to wait for a connection; default {DEFAULT_CONNECT_TIMEOUT:g}")
    option("--client", choices=CLIENTS, default="fast",
           help="fast (default: our own SigV4 over a keep-alive connection per user) or boto3 (the reference path)")
    option("--role-arn", metavar="ARN", help="assume this IAM role (refreshed before it expires) instead of using the credentials as found")
    option("--stream", action="store_true", default=False,
           help="use InvokeEndpointWithResponseStream; time to first part is reported as '<endpoint>/<variant> TTFB'")


@dataclass(frozen=True)
class Settings:
    """Everything a user needs to send requests, checked."""

    endpoint_name: str
    region: str
    endpoint_url: str
    scheme: str
    host: str
    port: int
    path_prefix: str
    payloads: tuple[payloads.Payload, ...] = field(compare=False, repr=False)  # not hashed per request
    payload_order: str
    payload_seed: int | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    target_variant: str | None
    target_model: str | None
    target_container_hostname: str | None
    inference_component: str | None
    request_timeout: float
    connect_timeout: float
    client: str
    role_arn: str | None
    stream: bool

    @property
    def operation(self) -> str:
        return "InvokeEndpointWithResponseStream" if self.stream else "InvokeEndpoint"

    @property
    def path(self) -> str:
        suffix = "invocations-response-stream" if self.stream else "invocations"
        return f"{self.path_prefix}/endpoints/{self.endpoint_name}/{suffix}"

    def sagemaker_headers(self) -> list[tuple[str, str]]:
        """The request headers besides Content-Type, in the order boto3 sends them."""
        accept_header = "X-Amzn-SageMaker-Accept" if self.stream else "Accept"
        headers = [
            (accept_header, self.accept),
            ("X-Amzn-SageMaker-Custom-Attributes", self.custom_attributes),
            ("X-Amzn-SageMaker-Target-Model", self.target_model),
            ("X-Amzn-SageMaker-Target-Variant", self.target_variant),
            ("X-Amzn-SageMaker-Target-Container-Hostname", self.target_container_hostname),
            ("X-Amzn-SageMaker-Inference-Component", self.inference_component),
        ]
        return [(name, value) for name, value in headers if value]


def _text(options: Any, name: str) -> str | None:
    """An option's value with the web UI's empty fields meaning 'not given'."""
    value = getattr(options, name, None)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _matching(options: Any, name: str, pattern: re.Pattern, what: str, max_len: int) -> str | None:
    value = _text(options, name)
    if value is not None and (len(value) > max_len or not pattern.fullmatch(value)):
        raise UsageError(_flag(name), f"{value!r} is not a valid {what} (at most {max_len} characters)")
    return value


def _seconds(options: Any, name: str, default: float) -> float:
    value = getattr(options, name, None)
    if value in (None, ""):
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(_flag(name), f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(_flag(name), f"must be a positive number of seconds, not {value!r}")
    return seconds


def _choice(options: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    value = _text(options, name) or default
    if value not in choices:
        raise UsageError(_flag(name), f"{value!r} is not one of {', '.join(choices)}")
    return value


def _seed(options: Any) -> int | None:
    value = getattr(options, "payload_seed", None)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError("--payload-seed", f"{value!r} is not an integer") from None


def _endpoint_parts(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query or parts.fragment:
        raise UsageError("--endpoint-url", f"{url!r} is not an http(s) URL like https://runtime.sagemaker.us-east-1.amazonaws.com")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port, parts.path.rstrip("/")


def settings_from(options: Any) -> Settings:
    """Check every option and file; raise UsageError naming the first bad one."""
    endpoint_name = _text(options, "endpoint_name")
    if endpoint_name is None:
        raise MissingOption("--endpoint-name", "is required: the name of the SageMaker endpoint to invoke")
    _matching(options, "endpoint_name", _NAME, "endpoint name (letters, digits and hyphens)", 63)
    target_variant = _matching(options, "target_variant", _NAME, "variant name (letters, digits and hyphens)", 63)
    container = _matching(options, "target_container_hostname", _NAME, "container hostname", 63)
    component = _matching(options, "inference_component", _COMPONENT, "inference component name", 63)
    content_type = _matching(options, "content_type", _PRINTABLE, "content type", 1024)
    accept = _matching(options, "accept", _PRINTABLE, "Accept value", 1024)
    custom_attributes = _matching(options, "custom_attributes", _PRINTABLE, "custom attributes value (printable ASCII)", 1024)
    target_model = _matching(options, "target_model", _PRINTABLE, "target model (printable ASCII)", 1024)
    role_arn = _matching(options, "role_arn", _ROLE_ARN, "IAM role ARN (arn:aws:iam::123456789012:role/NAME)", 2048)
    stream = bool(getattr(options, "stream", False))
    if stream and target_model:
        raise UsageError("--target-model", "cannot be combined with --stream: InvokeEndpointWithResponseStream has no target model")
    request_timeout = _seconds(options, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
    connect_timeout = _seconds(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    client = _choice(options, "client", CLIENTS, "fast")
    order = _choice(options, "payload_order", payloads.ORDERS, "random")
    seed = _seed(options)

    from . import aws  # botocore: only once the cheap checks passed

    session = aws.session()
    region = _matching(options, "region", _REGION, "AWS region (like us-east-1)", 64) or aws.default_region(session)
    if region is None:
        raise UsageError("--region", "no AWS region configured: pass --region or set AWS_REGION")
    endpoint_url = _text(options, "endpoint_url") or aws.default_endpoint_url(session, region)
    scheme, host, port, path_prefix = _endpoint_parts(endpoint_url)
    bodies = payloads.load(_text(options, "payload"), content_type)
    return Settings(
        endpoint_name=endpoint_name, region=region, endpoint_url=endpoint_url, scheme=scheme, host=host, port=port,
        path_prefix=path_prefix, payloads=tuple(bodies), payload_order=order, payload_seed=seed, content_type=content_type, accept=accept,
        custom_attributes=custom_attributes, target_variant=target_variant, target_model=target_model,
        target_container_hostname=container, inference_component=component, request_timeout=request_timeout,
        connect_timeout=connect_timeout, client=client, role_arn=role_arn, stream=stream,
    )
