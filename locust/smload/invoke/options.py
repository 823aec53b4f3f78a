"""The endpoint options, each declared once (:mod:`smload.flags`): what to invoke and how. The
table drives Locust's parser, the checks, :class:`Settings`, the request headers of both clients
(ours and boto3's keywords) and the reference table in docs/options.md.

A SageMaker request header is one :func:`header` row: its flag, the service model's member name
(boto3's keyword), its wire name per API and the value rules of the service model
(``tests/unit/test_invoke_options.py`` holds every row against botocore's model). Adding one is
that row, plus the chart's value (``helm/.../values.yaml`` ``locust.options``, which needs none).

No Locust import here; botocore only inside :func:`build` (region and endpoint URL).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from smload import flags
from smload.record import CHAT, INVOKE, STREAM
from smload.usage import MissingOption, UsageError

from . import llm, payloads

CLIENTS = ("fast", "boto3")
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds; SageMaker itself gives a model 60 s to answer
DEFAULT_CONNECT_TIMEOUT = 10.0

# Value rules of the service model (botocore's sagemaker-runtime shapes), as Python regexes.
NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"  # EndpointName, TargetVariant, TargetContainerHostname (max 63)
COMPONENT = r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?"  # InferenceComponentName
ASCII = r"[\x20-\x7e]*"  # \p{ASCII}, without control characters: safe in a header
PRINTABLE_ID = r"\S[\x20-\x7e]*"  # \A\S[\p{Print}]*\z
SESSION = r"NEW_SESSION|" + NAME
_REGION = r"[a-z]{2}(-[a-z]+)+-\d+"
_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"

BOTH = (INVOKE, STREAM)


def header(
    flag: str,
    member: str,
    wire: str,
    help: str,
    pattern: str,
    what: str,
    max_len: int,
    apis: tuple[str, ...] = BOTH,
    metavar: str = "TEXT",
    **wire_per_api: str,
) -> flags.Option:
    """A request header option: ``member`` is boto3's keyword, ``wire`` its header (``wire_per_api``
    where an API names it differently, e.g. the stream's X-Amzn-SageMaker-Accept)."""
    names = {api: wire_per_api.get(api, wire) for api in apis}
    return flags.Option(
        flag,
        help,
        flags.matching(pattern, what, max_len),
        metavar=metavar,
        extra={"member": member, "headers": names},
    )


HEADERS = (
    header(
        "--accept",
        "Accept",
        "Accept",
        "Accept header (the response type to ask for); default: none",
        ASCII,
        "Accept value",
        1024,
        metavar="TYPE",
        InvokeEndpointWithResponseStream="X-Amzn-SageMaker-Accept",
    ),
    header(
        "--custom-attributes",
        "CustomAttributes",
        "X-Amzn-SageMaker-Custom-Attributes",
        "X-Amzn-SageMaker-Custom-Attributes header",
        ASCII,
        "custom attributes value (printable ASCII)",
        1024,
    ),
    header(
        "--target-model",
        "TargetModel",
        "X-Amzn-SageMaker-Target-Model",
        "multi-model endpoints: the model to invoke (not with --stream)",
        PRINTABLE_ID,
        "target model (printable ASCII)",
        1024,
        apis=(INVOKE,),
        metavar="MODEL",
    ),
    header(
        "--target-variant",
        "TargetVariant",
        "X-Amzn-SageMaker-Target-Variant",
        "invoke this production variant only",
        NAME,
        "variant name (letters, digits and hyphens)",
        63,
        metavar="VARIANT",
    ),
    header(
        "--target-container-hostname",
        "TargetContainerHostname",
        "X-Amzn-SageMaker-Target-Container-Hostname",
        "multi-container endpoints: the container to invoke",
        NAME,
        "container hostname",
        63,
        metavar="HOST",
    ),
    header(
        "--inference-id",
        "InferenceId",
        "X-Amzn-SageMaker-Inference-Id",
        "an id recorded with each request for data capture and Clarify",
        PRINTABLE_ID,
        "inference id (printable ASCII, no leading space)",
        64,
        metavar="ID",
    ),
    header(
        "--enable-explanations",
        "EnableExplanations",
        "X-Amzn-SageMaker-Enable-Explanations",
        "Clarify online explainability: the JMESPath expression that selects which records to explain "
        "(not with --stream)",
        ASCII,
        "JMESPath expression",
        64,
        apis=(INVOKE,),
        metavar="EXPR",
    ),
    header(
        "--inference-component",
        "InferenceComponentName",
        "X-Amzn-SageMaker-Inference-Component",
        "the inference component to invoke",
        COMPONENT,
        "inference component name",
        63,
        metavar="NAME",
    ),
    header(
        "--session-id",
        "SessionId",
        "X-Amzn-SageMaker-Session-Id",
        "stateful sessions: NEW_SESSION to open one, or the id of an open session",
        SESSION,
        "session id (NEW_SESSION, or letters, digits and hyphens)",
        256,
        metavar="ID",
    ),
)
HEADER_DESTS = tuple(option.dest for option in HEADERS)

OPTIONS = (
    flags.Option(
        "--endpoint-name",
        "the SageMaker endpoint to invoke",
        flags.matching(NAME, "endpoint name (letters, digits and hyphens)", 63),
        metavar="NAME",
        required=True,
    ),
    flags.Option(
        "--region",
        "AWS region; default: the botocore chain (AWS_DEFAULT_REGION, AWS_REGION, the profile's region)",
        flags.matching(_REGION, "AWS region (like us-east-1)", 64),
        metavar="REGION",
    ),
    flags.Option(
        "--endpoint-url",
        "runtime API URL; default: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, else "
        "https://runtime.sagemaker.<region>.amazonaws.com",
        metavar="URL",
    ),
    flags.Option(
        "--payload",
        "request bodies: a file, a directory (each file one body) or a .jsonl file (each line "
        "one body); required unless an LLM test takes its prompts from --dataset or --prompt-tokens",
        metavar="PATH",
    ),
    flags.Option(
        "--payload-order", "order in which bodies are sent", choices=payloads.ORDERS, default="random"
    ),
    flags.Option(
        "--payload-seed",
        "seed for --payload-order random (each worker derives its own sequence from it)",
        flags.number(integer=True),
        metavar="N",
    ),
    flags.Option(
        "--content-type",
        "Content-Type of every body; default: by file extension (.json application/json, "
        ".csv text/csv, ...), application/json for .jsonl lines",
        flags.matching(ASCII, "content type", 1024),
        metavar="TYPE",
    ),
    *HEADERS,
    flags.Option(
        "--request-timeout",
        "seconds to wait for each read of the response (like botocore's read_timeout)",
        flags.positive_seconds,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
    ),
    flags.Option(
        "--connect-timeout",
        "seconds to wait for a connection",
        flags.positive_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
    ),
    flags.Option(
        "--client",
        "fast (our own SigV4 over a keep-alive connection per user) or boto3 (the reference path)",
        choices=CLIENTS,
        default="fast",
    ),
    flags.Option(
        "--role-arn",
        "assume this IAM role (refreshed before it expires) instead of using the credentials as found",
        flags.matching(_ROLE_ARN, "IAM role ARN (arn:aws:iam::123456789012:role/NAME)", 2048),
        metavar="ARN",
    ),
    flags.Option(
        "--stream",
        "use InvokeEndpointWithResponseStream (time to the first part is measured too)",
        switch=True,
    ),
    *llm.OPTIONS,
)
_BY_DEST = {option.dest: option for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Everything a user needs to send requests, checked once."""

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
    request_timeout: float
    connect_timeout: float
    client: str
    role_arn: str | None
    stream: bool
    header_values: tuple[tuple[str, str], ...] = ()  # (dest, value) of the header options given, table order
    llm: llm.LLMSettings | None = field(default=None, compare=False)  # an LLM test (any LLM option given)

    @property
    def api(self) -> str:
        if self.llm is not None and self.llm.api == llm.OPENAI_API:
            return CHAT
        return STREAM if self.stream else INVOKE

    @property
    def path(self) -> str:
        if self.llm is not None and self.llm.api == llm.OPENAI_API:
            component = self.inference_component
            middle = f"/inference-components/{component}" if component else ""
            return f"{self.path_prefix}/endpoints/{self.endpoint_name}{middle}/openai/v1/chat/completions"
        suffix = "invocations-response-stream" if self.stream else "invocations"
        return f"{self.path_prefix}/endpoints/{self.endpoint_name}/{suffix}"

    def value(self, dest: str) -> str | None:
        return dict(self.header_values).get(dest)

    @property
    def target_variant(self) -> str | None:
        return self.value("target_variant")

    @property
    def inference_component(self) -> str | None:
        return self.value("inference_component")

    def sagemaker_headers(self) -> list[tuple[str, str]]:
        """The request headers besides Content-Type, in the order boto3 sends them (the service model's)."""
        api = STREAM if self.stream else INVOKE
        return [(_BY_DEST[dest].extra["headers"][api], value) for dest, value in self.header_values]

    def boto3_kwargs(self) -> dict[str, str]:
        """The same headers as boto3's keyword arguments."""
        return {_BY_DEST[dest].extra["member"]: value for dest, value in self.header_values}

    def overridden(self, **overrides: Any) -> Settings:
        """These settings for one call of a custom locustfile (``client.invoke(target_variant=...)``),
        checked like the options themselves."""
        unknown = set(overrides) - set(HEADER_DESTS) - {"endpoint_name", "stream"}
        if unknown:
            raise TypeError(f"invoke() got unexpected keyword arguments {sorted(unknown)}")
        values = dict(self.header_values)
        for dest in HEADER_DESTS:
            if dest in overrides:
                value = overrides[dest]
                values[dest] = None if value is None else _BY_DEST[dest].parse(str(value))
        stream = bool(overrides.get("stream", self.stream))
        endpoint = overrides.get("endpoint_name", self.endpoint_name)
        _BY_DEST["endpoint_name"].parse(endpoint)
        headers = _ordered(values, STREAM if stream else INVOKE)
        return dataclasses.replace(self, endpoint_name=endpoint, stream=stream, header_values=headers)


def _ordered(values: dict[str, str | None], api: str) -> tuple[tuple[str, str], ...]:
    """The given header values in table order; a header the API does not take is an error."""
    out = []
    for option in HEADERS:
        value = values.get(option.dest)
        if value:
            if api not in option.extra["headers"]:
                raise UsageError(
                    option.flag, f"cannot be combined with --stream: {api} has no {option.extra['member']}"
                )
            out.append((option.dest, value))
    return tuple(out)


def _endpoint_parts(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.query
        or parts.fragment
    ):
        raise UsageError(
            "--endpoint-url",
            f"{url!r} is not an http(s) URL like https://runtime.sagemaker.us-east-1.amazonaws.com",
        )
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port, parts.path.rstrip("/")


def build(values: flags.Values) -> Settings:
    """The checked settings (cross-option rules, region and URL from botocore, the payload files)."""
    stream = values["stream"]
    llm_settings, bodies = None, None
    if llm.given(values):
        llm_settings, bodies = llm.build(values, values["endpoint_name"], stream)
        stream = llm_settings.api == llm.STREAM_API
        if llm_settings.api == llm.OPENAI_API and values["client"] == "boto3":
            raise UsageError(
                "--client", "boto3 has no OpenAI-compatible route: use --client fast with --api openai"
            )
    if bodies is None and not values["payload"]:
        raise MissingOption(
            "--payload",
            "is required: give a file, a directory of files or a .jsonl file of request "
            "bodies (LLM tests: or --dataset, or --prompt-tokens)",
        )
    headers = _ordered(values, STREAM if stream else INVOKE)

    from . import aws  # botocore: only once the cheap checks passed

    session = aws.session()
    region = values["region"] or aws.default_region(session)
    if region is None:
        raise UsageError("--region", "no AWS region configured: pass --region or set AWS_REGION")
    endpoint_url = values["endpoint_url"] or aws.default_endpoint_url(session, region)
    scheme, host, port, path_prefix = _endpoint_parts(endpoint_url)
    if bodies is None:
        bodies = payloads.load(values["payload"], values["content_type"])
        if llm_settings is not None:
            bodies = llm.count_payload_prompts(bodies, llm_settings.counter)
    return Settings(
        endpoint_name=values["endpoint_name"],
        region=region,
        endpoint_url=endpoint_url,
        scheme=scheme,
        host=host,
        port=port,
        path_prefix=path_prefix,
        payloads=tuple(bodies),
        payload_order=values["payload_order"],
        payload_seed=values["payload_seed"],
        content_type=values["content_type"],
        request_timeout=values["request_timeout"],
        connect_timeout=values["connect_timeout"],
        client=values["client"],
        role_arn=values["role_arn"],
        stream=stream,
        header_values=headers,
        llm=llm_settings,
    )


GROUP = flags.register(
    flags.Group(
        "endpoint",
        "SageMaker endpoint",
        "What to invoke and how (sagemaker-loadtest). Each option is also a LOCUST_* variable.",
        OPTIONS,
        build,
        rank=10,
    )
)
