"""The emulator's configuration: endpoints, variants and access keys, read from a YAML/JSON file or
from ``--endpoint``/``--variant`` flags, validated before the server starts.

Every problem raises :class:`smload.usage.UsageError` naming the field the way the user wrote it:
``ab.yaml: endpoints[0].variants[1].weight: must be a number > 0`` or
``--variant: unknown key 'latncy_ms' (did you mean 'latency_ms'?)``.

Whatever a file holds, a configuration either comes out ready to serve or a UsageError of one line
says what is wrong; no other exception. So the file is read bounded (a regular file of at most
``MAX_FILE_BYTES``, UTF-8), and every value goes through one of :class:`_Reader`'s typed readers
(number, integer, text, choice, name, ...), each of which checks type and range, including an upper
bound: a value too big to serve (a 4 GB response body, a latency whose tail overflows a float, a
string that is not Unicode text) is refused here rather than found by the first request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smload import errors, scaling
from smload.usage import UsageError

from . import llm_config
from .llm_config import LLM

# SageMaker's own name rules (the service model's EndpointName / TargetVariantHeader patterns).
NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
NAME_MAX = 63
# IAM's AccessKeyId pattern ([\w]+, at most 128). IAM's keys have 16 or more characters; shorter ids
# are accepted too, so that AWS's own examples (AKIDEXAMPLE, the SigV4 test suite's key) can be used.
ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
MAX_FILE_BYTES = 1024 * 1024  # a configuration file is a few KB; past this it is the wrong file
MAX_MS = 3_600_000.0  # any latency, delay or wait: an hour (SageMaker's invocation timeout is 60 s)
MAX_S = 1_000_000_000.0  # any time in seconds (fault windows)
MAX_WEIGHT = 1_000_000.0
MAX_INT = 2**31 - 1
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's 6 MiB: a fixed or json response body is no larger
MAX_STREAM_PARTS = 10_000
MAX_TEXT = 4096  # secrets, session tokens, content types
# sigma <= ln(1e6) / 2.326 = 5.9: even random.gauss's largest draw (8.6) gives a finite service time.
MAX_P99_RATIO = 1_000_000.0
MAX_TIME_SCALE = 3600.0  # an hour of policy time in a second
LOGNORMAL_Z99 = 2.3263478740408408  # the standard normal's 99th percentile
DEFAULT_REGION = "us-east-1"
DEFAULT_VARIANT = "AllTraffic"  # SageMaker's name for an endpoint's only variant
BUNDLED_EXAMPLE = Path(__file__).parent / "examples" / "ab-test.yaml"
# Errors a response stream can break with after it began (event-stream exception events), and the
# error type the load generator classifies each as.
STREAM_ERRORS = {"ModelStreamError": errors.MODEL_ERROR, "InternalStreamFailure": errors.INTERNAL_FAILURE}

# An error an endpoint answers with: a service error type, and for ModelError the status code the
# model returned (``ModelError(503)``). Written as DESIGN.md names errors: ``ModelError(503)``.
_ERROR_SPEC = re.compile(r"^(?P<name>[A-Za-z]+)(?:\((?P<status>\d{1,3})\))?$")


@dataclass(frozen=True)
class ErrorSpec:
    error: str
    status: int | None = None  # ModelError only: the original (model's) status code

    def __str__(self) -> str:
        return self.error if self.status is None else f"{self.error}({self.status})"


@dataclass
class Latency:
    median_ms: float = 20.0
    p99_ms: float | None = None  # given: lognormal through (median, p99); absent: constant
    per_kib_ms: float = 0.0  # added per KiB of request body

    @property
    def sigma(self) -> float:
        return math.log(self.p99_ms / self.median_ms) / LOGNORMAL_Z99 if self.p99_ms else 0.0


@dataclass
class Queue:
    max_depth: int | None = None  # waiting requests beyond the busy slots; None: 100 per instance
    max_wait_ms: float = 60_000.0  # SageMaker's invocation timeout
    on_full: ErrorSpec = ErrorSpec(errors.MODEL_ERROR, 503)
    on_timeout: ErrorSpec = ErrorSpec(errors.MODEL_ERROR, 0)


@dataclass
class Response:
    body: str = "echo"  # echo | fixed | json
    fixed: str = ""
    json_bytes: int = 512
    content_type: str | None = None  # None: the request's Accept/Content-Type (echo), else application/json


@dataclass
class Stream:
    parts: int = 4
    part_delay_ms: float = 0.0
    error_rate: float = 0.0  # probability that a stream breaks halfway with an error event
    error: str = "ModelStreamError"  # or InternalStreamFailure (the stream's modelled exceptions)


@dataclass
class Window:
    error: ErrorSpec
    from_s: float
    to_s: float


@dataclass
class Stall:
    """Every slot of the variant pauses from ``from_s`` to ``to_s`` after the last reset: a request in
    service finishes that much later, one that would start in it starts at its end (a GC pause, a
    node drain). Requests still arrive and queue."""

    from_s: float
    to_s: float


@dataclass
class Slow:
    rate: float = 0.0
    extra_ms: float = 0.0


@dataclass
class Faults:
    rates: dict[ErrorSpec, float] = field(default_factory=dict)
    model_error_status: int = 500
    windows: list[Window] = field(default_factory=list)
    slow: Slow = field(default_factory=Slow)
    drop_rate: float = 0.0
    stalls: list[Stall] = field(default_factory=list)


@dataclass
class Autoscaling:
    """A variant's (or component's) scalable target and its policies (smload.scaling), in policy time."""

    limits: scaling.Limits
    policies: list[scaling.Policy]

    def to_json(self) -> dict:
        return {
            "min_capacity": self.limits.min_capacity,
            "max_capacity": self.limits.max_capacity,
            "startup_s": self.limits.startup_s,
            "policies": [
                {"name": p.name, "type": p.type, "describe": p.describe(), "document": p.document}
                for p in self.policies
            ],
        }


@dataclass
class Variant:
    name: str
    weight: float = 1.0
    instances: int = 1
    concurrency: int = 4
    latency: Latency = field(default_factory=Latency)
    queue: Queue = field(default_factory=Queue)
    response: Response = field(default_factory=Response)
    stream: Stream = field(default_factory=Stream)
    faults: Faults = field(default_factory=Faults)
    llm: LLM | None = None  # set: an LLM (continuous batching per instance) instead of slots x latency
    autoscaling: Autoscaling | None = None  # set: Application Auto Scaling changes ``instances`` over time

    @property
    def slots(self) -> int:
        return self.instances * (self.llm.max_batch if self.llm is not None else self.concurrency)

    @property
    def queue_limit(self) -> int:
        return self.queue.max_depth if self.queue.max_depth is not None else 100 * self.instances


@dataclass
class Endpoint:
    name: str
    variants: list[Variant]
    # Inference components instead of variants: each a Variant whose ``instances`` are its copies
    # (routed to by the X-Amzn-SageMaker-Inference-Component header, never by weight).
    components: list[Variant] = field(default_factory=list)


@dataclass
class AccessKey:
    key_id: str
    secret: str
    session_token: str | None = None  # set: a temporary key, valid only with this token
    expires_at: float | None = None  # unix time


@dataclass
class Config:
    endpoints: list[Endpoint]
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    strict_sigv4: bool = False
    # policy time (autoscaling's periods, alarms, cooldowns, start-up) runs this much faster
    time_scale: float = 1.0
    source: str = ""  # where it came from, for the startup line

    def to_json(self) -> dict:
        """The effective configuration (``GET /_emulator/config``); secrets are not shown."""

        def plain(value: Any) -> Any:
            if isinstance(value, ErrorSpec):
                return str(value)
            if dataclasses.is_dataclass(value):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        out = plain(self)
        out["access_keys"] = sorted(self.access_keys)
        for endpoint, data in zip(self.endpoints, out["endpoints"], strict=True):
            for variant, vdata in zip(
                endpoint.variants + endpoint.components, data["variants"] + data["components"], strict=True
            ):
                vdata["queue"]["max_depth"] = variant.queue_limit
                if variant.autoscaling is None:
                    del vdata["autoscaling"]
                else:
                    vdata["autoscaling"] = variant.autoscaling.to_json()
                if variant.llm is None:
                    del vdata["llm"]
                else:
                    vdata["llm"] = variant.llm.to_json()
            components = data.pop("components")
            for vdata in components:
                vdata["copies"] = vdata.pop("instances")
                del vdata["weight"]
            if components:
                data["inference_components"] = components
        return out


# ---------------------------------------------------------------------------------------------
# Reading a file


class _Reader:
    """Walks a parsed document, naming every field by its path for error messages."""

    def __init__(self, source: str, base_dir: Path | None = None):
        self.source = source
        self.base_dir = base_dir  # where relative paths in the document (a tokenizer) start

    def fail(self, path: str, message: str) -> UsageError:
        return UsageError(f"{self.source}: {path}" if path else self.source, message)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.fail(path, _unknown_key(key, allowed))
        return value

    def number(
        self, value: Any, path: str, maximum: float, minimum: float = 0.0, exclusive: bool = False
    ) -> float:
        # Compared as given, never converted first: an int of 400 digits must not overflow float().
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        ok = ok and (value > minimum if exclusive else value >= minimum) and value <= maximum  # NaN fails
        if not ok:
            bound = f"> {_fmt(minimum)}" if exclusive else f">= {_fmt(minimum)}"
            raise self.fail(path, f"must be a number {bound} and <= {_fmt(maximum)}")
        return float(value)

    def integer(self, value: Any, path: str, minimum: int, maximum: int = MAX_INT) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(path, f"must be an integer >= {minimum} and <= {maximum}")
        return value

    def text(
        self,
        value: Any,
        path: str,
        what: str,
        max_bytes: int = MAX_TEXT,
        header: bool = False,
        empty: bool = False,
    ) -> str:
        """A string of Unicode text (no lone surrogates: it must encode), at most ``max_bytes`` in
        UTF-8, not empty unless ``empty``; ``header``: printable ASCII, as it goes into a response header."""
        try:
            raw = value.encode() if isinstance(value, str) else None
        except UnicodeEncodeError:
            raw = None
        if (
            raw is None
            or len(raw) > max_bytes
            or not (raw or empty)
            or (header and not (value.isascii() and value.isprintable()))
        ):
            raise self.fail(path, f"must be {what}")
        return value

    def choice(self, value: Any, path: str, options: tuple[str, ...] | dict) -> str:
        if not isinstance(value, str) or value not in options:
            raise self.fail(path, f"must be one of {', '.join(options)}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_PATTERN.fullmatch(value):
            raise self.fail(
                path, "must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit"
            )
        return value

    def error_spec(self, value: Any, path: str) -> ErrorSpec:
        spec = _error_spec(value)
        if spec is None:
            raise self.fail(
                path,
                f"must be one of {', '.join(errors.SERVICE_ERRORS)} (ModelError may name its status: ModelError(503))",
            )
        return spec


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _unknown_key(key: Any, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key)[:100], allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(allowed)})"
    return f"unknown key {_shown(key)}{hint}"


def _shown(value: Any) -> str:
    """A value from the user's file inside a message: quoted, escaped to one line, cut to 40 characters."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _error_spec(value: Any) -> ErrorSpec | None:
    match = _ERROR_SPEC.match(value) if isinstance(value, str) else None
    if not match or match["name"] not in errors.SERVICE_ERRORS:
        return None
    if match["status"] is not None and match["name"] != errors.MODEL_ERROR:
        return None
    return ErrorSpec(match["name"], int(match["status"]) if match["status"] else None)


def load_file(path: Path) -> Config:
    source = path.name
    text = _read_text(path)
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        if kind == "JSON":
            doc = json.loads(text)
        else:
            import yaml  # only here: the server itself needs no YAML

            # libyaml's parser where PyYAML was built with it: the same safe constructors, 10x faster
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except RecursionError:
        raise UsageError(source, f"not valid {kind}: nested too deeply") from None
    except Exception as exc:  # the parser's verdict on the user's text (YAMLError, ValueError, ...)
        message = " ".join(str(exc).split())
        raise UsageError(source, f"not valid {kind}: {message[:300]}") from None
    config = from_dict(doc, _Reader(source, path.parent))
    config.source = str(path)
    return config


def _read_text(path: Path) -> str:
    """The file's text: a regular file (not a device, FIFO or directory: those never end or block)
    of at most MAX_FILE_BYTES, in UTF-8."""
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError("--config", f"{path} is not a regular file: give a YAML or JSON file")
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError("--config", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UsageError(
            "--config", f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB: not a configuration file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            "--config", f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None


def from_dict(doc: Any, reader: _Reader) -> Config:
    doc = reader.mapping(doc, "", ("endpoints", "access_keys", "region", "strict_sigv4", "time_scale"))
    if not isinstance(doc.get("endpoints"), list) or not doc["endpoints"]:
        raise reader.fail("endpoints", "must be a list of at least one endpoint")
    endpoints = [_endpoint(e, f"endpoints[{i}]", reader) for i, e in enumerate(doc["endpoints"])]
    _unique([e.name for e in endpoints], "endpoints", "endpoint", reader)
    config = Config(endpoints=endpoints)
    if "region" in doc:
        config.region = _region(doc["region"], reader)
    if "strict_sigv4" in doc:
        if not isinstance(doc["strict_sigv4"], bool):
            raise reader.fail("strict_sigv4", "must be true or false")
        config.strict_sigv4 = doc["strict_sigv4"]
    if "access_keys" in doc:
        config.access_keys = _access_keys(doc["access_keys"], reader)
    if "time_scale" in doc:
        config.time_scale = reader.number(doc["time_scale"], "time_scale", MAX_TIME_SCALE, exclusive=True)
    return config


def _region(value: Any, reader: _Reader) -> str:
    if not isinstance(value, str) or len(value) > 64 or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        raise reader.fail("region", "must be an AWS region name such as us-east-1")
    return value


def _unique(names: list[str], path: str, what: str, reader: _Reader) -> None:
    seen = set()
    for i, name in enumerate(names):
        if name in seen:
            raise reader.fail(f"{path}[{i}].name", f"duplicate {what} name '{name}'")
        seen.add(name)


def _endpoint(doc: Any, path: str, reader: _Reader) -> Endpoint:
    doc = reader.mapping(doc, path, ("name", "variants", "inference_components"))
    name = reader.name(doc.get("name"), f"{path}.name")
    if "inference_components" in doc:
        if "variants" in doc:
            raise reader.fail(
                f"{path}.inference_components", "an endpoint has variants or inference components, not both"
            )
        if not isinstance(doc["inference_components"], list) or not doc["inference_components"]:
            raise reader.fail(
                f"{path}.inference_components", "must be a list of at least one inference component"
            )
        components = [
            _variant(c, f"{path}.inference_components[{i}]", reader, component=True)
            for i, c in enumerate(doc["inference_components"])
        ]
        _unique([c.name for c in components], f"{path}.inference_components", "inference component", reader)
        return Endpoint(name, [], components)
    if not isinstance(doc.get("variants"), list) or not doc["variants"]:
        raise reader.fail(f"{path}.variants", "must be a list of at least one variant")
    variants = [_variant(v, f"{path}.variants[{i}]", reader) for i, v in enumerate(doc["variants"])]
    _unique([v.name for v in variants], f"{path}.variants", "variant", reader)
    return Endpoint(name, variants)


_VARIANT_KEYS = (
    "name",
    "weight",
    "instances",
    "concurrency",
    "latency",
    "queue",
    "response",
    "stream",
    "faults",
    "llm",
    "autoscaling",
)
# An inference component: its copies instead of a weight and instances (each copy is one instance).
_COMPONENT_KEYS = (
    "name",
    "copies",
    "concurrency",
    "latency",
    "queue",
    "response",
    "stream",
    "faults",
    "llm",
    "autoscaling",
)


def _variant(doc: Any, path: str, reader: _Reader, component: bool = False) -> Variant:
    doc = reader.mapping(doc, path, _COMPONENT_KEYS if component else _VARIANT_KEYS)
    v = Variant(name=reader.name(doc.get("name"), f"{path}.name"))
    if "weight" in doc:
        v.weight = reader.number(doc["weight"], f"{path}.weight", MAX_WEIGHT, exclusive=True)
    if "instances" in doc:
        v.instances = reader.integer(doc["instances"], f"{path}.instances", 1)
    if "copies" in doc:
        v.instances = reader.integer(doc["copies"], f"{path}.copies", 1)
    if "llm" in doc:
        v.llm = llm_config.parse(doc["llm"], f"{path}.llm", reader, reader.base_dir)
    if "concurrency" in doc:
        v.concurrency = reader.integer(doc["concurrency"], f"{path}.concurrency", 1)
    if "latency" in doc:
        v.latency = _latency(doc["latency"], f"{path}.latency", reader)
    if "queue" in doc:
        v.queue = _queue(doc["queue"], f"{path}.queue", reader)
    if "response" in doc:
        v.response = _response(doc["response"], f"{path}.response", reader)
    if "stream" in doc:
        s = reader.mapping(doc["stream"], f"{path}.stream", ("parts", "part_delay_ms", "error_rate", "error"))
        v.stream = Stream(
            parts=reader.integer(s.get("parts", 4), f"{path}.stream.parts", 1, MAX_STREAM_PARTS),
            part_delay_ms=reader.number(s.get("part_delay_ms", 0), f"{path}.stream.part_delay_ms", MAX_MS),
            error_rate=reader.number(s.get("error_rate", 0), f"{path}.stream.error_rate", 1.0),
            error=reader.choice(s.get("error", "ModelStreamError"), f"{path}.stream.error", STREAM_ERRORS),
        )
    if "faults" in doc:
        v.faults = _faults(doc["faults"], f"{path}.faults", reader)
    if "autoscaling" in doc:
        if v.llm is not None:
            raise reader.fail(
                f"{path}.autoscaling", "autoscaling is not emulated for LLM variants and components yet"
            )
        v.autoscaling = _autoscaling(
            doc["autoscaling"], f"{path}.autoscaling", reader, v.instances, component
        )
    return v


def _autoscaling(doc: Any, path: str, reader: _Reader, instances: int, component: bool) -> Autoscaling:
    """``{min_capacity, max_capacity, startup_s, policies: [policy document or {file: ...}, ...]}``."""
    doc = reader.mapping(doc, path, ("min_capacity", "max_capacity", "startup_s", "policies"))
    if "max_capacity" not in doc:
        raise reader.fail(f"{path}.max_capacity", "is required (register-scalable-target's MaxCapacity)")
    low = reader.integer(doc.get("min_capacity", instances), f"{path}.min_capacity", 1, scaling.MAX_CAPACITY)
    high = reader.integer(doc["max_capacity"], f"{path}.max_capacity", 1, scaling.MAX_CAPACITY)
    startup = reader.number(doc.get("startup_s", 300), f"{path}.startup_s", 86400.0)
    if not low <= instances <= high:
        what = "copies" if component else "instances"
        raise reader.fail(
            f"{path}", f"need min_capacity ({low}) <= {what} ({instances}) <= max_capacity ({high})"
        )
    docs = doc.get("policies")
    if not isinstance(docs, list) or not docs:
        raise reader.fail(
            f"{path}.policies",
            "must be a list of at least one scaling policy (a put-scaling-policy "
            "configuration, or {file: scaling-policy.json})",
        )
    policies: list[scaling.Policy] = []
    for i, item in enumerate(docs):
        where = f"{path}.policies[{i}]"
        try:
            if isinstance(item, dict) and set(item) == {"file"}:
                file = reader.text(item["file"], f"{where}.file", "a file name")
                base = reader.base_dir or Path(".")
                policies += scaling.load_policies(base / file, f"{reader.source}: {where}.file", component)
            else:
                policies += scaling.parse_policies(
                    item, f"{reader.source}: {where}", f"policy-{i + 1}", component
                )
        except UsageError as err:
            raise UsageError(
                err.option if err.option.startswith(reader.source) else f"{reader.source}: {err.option}",
                err.message,
            ) from None
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise reader.fail(f"{path}.policies", "two policies have the same name: give each a PolicyName")
    limits = scaling.Limits(low, high, startup)
    return Autoscaling(limits, policies)


def _latency(doc: Any, path: str, reader: _Reader) -> Latency:
    if not isinstance(doc, dict):  # a bare number: constant latency
        return Latency(median_ms=reader.number(doc, path, MAX_MS))
    doc = reader.mapping(doc, path, ("median_ms", "p99_ms", "per_kib_ms"))
    lat = Latency(median_ms=reader.number(doc.get("median_ms", 20.0), f"{path}.median_ms", MAX_MS))
    if doc.get("p99_ms") is not None:
        lat.p99_ms = reader.number(doc["p99_ms"], f"{path}.p99_ms", MAX_MS, exclusive=True)
        if lat.median_ms <= 0 or not lat.median_ms <= lat.p99_ms <= lat.median_ms * MAX_P99_RATIO:
            raise reader.fail(
                f"{path}.p99_ms",
                "must be >= median_ms and <= 1000000 x median_ms, and median_ms > 0 (lognormal)",
            )
    lat.per_kib_ms = reader.number(doc.get("per_kib_ms", 0.0), f"{path}.per_kib_ms", MAX_MS)
    return lat


def _queue(doc: Any, path: str, reader: _Reader) -> Queue:
    doc = reader.mapping(doc, path, ("max_depth", "max_wait_ms", "on_full", "on_timeout"))
    q = Queue()
    if doc.get("max_depth") is not None:
        q.max_depth = reader.integer(doc["max_depth"], f"{path}.max_depth", 0)
    if "max_wait_ms" in doc:
        q.max_wait_ms = reader.number(doc["max_wait_ms"], f"{path}.max_wait_ms", MAX_MS)
    if "on_full" in doc:
        q.on_full = reader.error_spec(doc["on_full"], f"{path}.on_full")
    if "on_timeout" in doc:
        q.on_timeout = reader.error_spec(doc["on_timeout"], f"{path}.on_timeout")
    return q


def _response(doc: Any, path: str, reader: _Reader) -> Response:
    doc = reader.mapping(doc, path, ("body", "fixed", "json_bytes", "content_type"))
    r = Response()
    r.body = reader.choice(doc.get("body", "echo"), f"{path}.body", ("echo", "fixed", "json"))
    if "fixed" in doc:
        r.fixed = reader.text(
            doc["fixed"],
            f"{path}.fixed",
            f"a string of at most {MAX_BODY_BYTES} bytes",
            MAX_BODY_BYTES,
            empty=True,
        )
    if "json_bytes" in doc:
        r.json_bytes = reader.integer(doc["json_bytes"], f"{path}.json_bytes", 2, MAX_BODY_BYTES)
    if "content_type" in doc:
        r.content_type = reader.text(
            doc["content_type"],
            f"{path}.content_type",
            "a media type such as application/json",
            256,
            header=True,
        )
    return r


def _faults(doc: Any, path: str, reader: _Reader) -> Faults:
    doc = reader.mapping(doc, path, ("rates", "model_error_status", "windows", "slow", "drop_rate", "stalls"))
    f = Faults()
    if "model_error_status" in doc:
        status = doc["model_error_status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 599:
            raise reader.fail(f"{path}.model_error_status", "must be an HTTP status code (0-599)")
        f.model_error_status = status
    if "rates" in doc:
        rates = doc["rates"]
        if not isinstance(rates, dict):
            raise reader.fail(f"{path}.rates", "must be a mapping of error type to probability")
        for key, rate in rates.items():
            spec = _error_spec(key)
            if spec is None:
                raise reader.fail(f"{path}.rates", _unknown_key(key, errors.SERVICE_ERRORS))
            f.rates[spec] = reader.number(rate, f"{path}.rates.{key}", 1.0)
    if "windows" in doc:
        if not isinstance(doc["windows"], list):
            raise reader.fail(f"{path}.windows", "must be a list of {error, from_s, to_s}")
        for i, w in enumerate(doc["windows"]):
            wpath = f"{path}.windows[{i}]"
            w = reader.mapping(w, wpath, ("error", "from_s", "to_s"))
            for key in ("error", "from_s", "to_s"):
                if key not in w:
                    raise reader.fail(f"{wpath}.{key}", "is required")
            window = Window(
                reader.error_spec(w["error"], f"{wpath}.error"),
                reader.number(w["from_s"], f"{wpath}.from_s", MAX_S),
                reader.number(w["to_s"], f"{wpath}.to_s", MAX_S),
            )
            if window.to_s <= window.from_s:
                raise reader.fail(f"{wpath}.to_s", "must be greater than from_s")
            f.windows.append(window)
    if "slow" in doc:
        s = reader.mapping(doc["slow"], f"{path}.slow", ("rate", "extra_ms"))
        f.slow = Slow(
            reader.number(s.get("rate", 0), f"{path}.slow.rate", 1.0),
            reader.number(s.get("extra_ms", 0), f"{path}.slow.extra_ms", MAX_MS),
        )
    if "drop_rate" in doc:
        f.drop_rate = reader.number(doc["drop_rate"], f"{path}.drop_rate", 1.0)
    if "stalls" in doc:
        if not isinstance(doc["stalls"], list):
            raise reader.fail(f"{path}.stalls", "must be a list of {from_s, to_s}")
        for i, w in enumerate(doc["stalls"]):
            wpath = f"{path}.stalls[{i}]"
            w = reader.mapping(w, wpath, ("from_s", "to_s"))
            for key in ("from_s", "to_s"):
                if key not in w:
                    raise reader.fail(f"{wpath}.{key}", "is required")
            stall = Stall(
                reader.number(w["from_s"], f"{wpath}.from_s", MAX_S),
                reader.number(w["to_s"], f"{wpath}.to_s", MAX_S),
            )
            if stall.to_s <= stall.from_s:
                raise reader.fail(f"{wpath}.to_s", "must be greater than from_s")
            f.stalls.append(stall)
        f.stalls.sort(key=lambda stall: stall.from_s)
    check_fault_total(f, lambda message: reader.fail(path, message))
    return f


def check_fault_total(f: Faults, fail) -> None:
    if sum(f.rates.values()) + f.drop_rate > 1.0 + 1e-9:
        raise fail("the error rates and drop_rate add up to more than 1")


def _access_keys(doc: Any, reader: _Reader) -> dict[str, AccessKey]:
    if not isinstance(doc, dict):
        raise reader.fail(
            "access_keys",
            "must be a mapping of access key id to secret (or {secret, session_token, expires_at})",
        )
    keys = {}
    for key_id, value in doc.items():
        if not isinstance(key_id, str) or not ACCESS_KEY_ID.fullmatch(key_id):
            raise reader.fail(
                f"access_keys.{_shown(key_id)}",
                "an access key id is 1-128 letters, digits or underscores (IAM's [\\w]+)",
            )
        path = f"access_keys.{key_id}"
        if isinstance(value, str):
            keys[key_id] = AccessKey(key_id, reader.text(value, path, "a secret key (a string)"))
            continue
        value = reader.mapping(value, path, ("secret", "session_token", "expires_at"))
        key = AccessKey(key_id, reader.text(value.get("secret"), f"{path}.secret", "a secret key (a string)"))
        if value.get("session_token") is not None:
            key.session_token = reader.text(value["session_token"], f"{path}.session_token", "a string")
        if value.get("expires_at") is not None:
            key.expires_at = _timestamp(value["expires_at"], f"{path}.expires_at", reader)
        keys[key_id] = key
    return keys


def _timestamp(value: Any, path: str, reader: _Reader) -> float:
    if isinstance(value, dt.datetime):  # YAML parses ISO 8601 timestamps itself
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise reader.fail(
                path, "must be unix seconds or an ISO 8601 time such as 2026-01-01T00:00:00Z"
            ) from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
    return reader.number(value, path, MAX_S * 100)


# ---------------------------------------------------------------------------------------------
# Flags: --endpoint NAME --variant name=A,weight=1,... (repeatable, in order)

# --variant key -> (path in the config document, kind)
VARIANT_FLAG_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "name": (("name",), "str"),
    "weight": (("weight",), "num"),
    "instances": (("instances",), "int"),
    "concurrency": (("concurrency",), "int"),
    "latency_ms": (("latency", "median_ms"), "num"),
    "latency_p99_ms": (("latency", "p99_ms"), "num"),
    "per_kib_ms": (("latency", "per_kib_ms"), "num"),
    "max_queue": (("queue", "max_depth"), "int"),
    "max_wait_ms": (("queue", "max_wait_ms"), "num"),
    "body": (("response", "body"), "str"),
    "json_bytes": (("response", "json_bytes"), "int"),
    "stream_parts": (("stream", "parts"), "int"),
    "part_delay_ms": (("stream", "part_delay_ms"), "num"),
    "stream_error_rate": (("stream", "error_rate"), "num"),
    "model_error_status": (("faults", "model_error_status"), "int"),
    "drop_rate": (("faults", "drop_rate"), "num"),
    "slow_rate": (("faults", "slow", "rate"), "num"),
    "slow_ms": (("faults", "slow", "extra_ms"), "num"),
    **llm_config.FLAG_KEYS,  # any of these makes the variant an LLM variant
}


def parse_variant_flag(spec: str) -> dict:
    """``name=A,weight=1,latency_ms=25,ModelError=0.01`` -> a variant document (as in a file).
    Any service error type (``ModelError``, ``ThrottlingException``, ...) as a key sets its rate."""
    doc: dict = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not raw.strip():
            raise UsageError("--variant", f"expected key=value, got '{item}'")
        raw = raw.strip()
        if _error_spec(key) is not None:
            path, kind = ("faults", "rates", key), "num"
        elif key in VARIANT_FLAG_KEYS:
            path, kind = VARIANT_FLAG_KEYS[key]
        else:
            raise UsageError("--variant", _unknown_key(key, tuple(VARIANT_FLAG_KEYS) + errors.SERVICE_ERRORS))
        try:
            value: Any = int(raw) if kind == "int" else float(raw) if kind == "num" else raw
        except ValueError:
            raise UsageError(
                "--variant", f"{key}: must be {'an integer' if kind == 'int' else 'a number'}, got '{raw}'"
            ) from None
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return doc


def from_flags(items: list[tuple[str, str]]) -> Config:
    """``items``: ("endpoint", NAME) and ("variant", SPEC) in command-line order."""
    endpoints: list[dict] = []
    for kind, value in items:
        if kind == "endpoint":
            endpoints.append({"name": value, "variants": []})
        else:
            if not endpoints:
                raise UsageError(
                    "--variant",
                    "give --endpoint NAME first: each --variant belongs to the --endpoint before it",
                )
            endpoints[-1]["variants"].append(parse_variant_flag(value))
    for endpoint in endpoints:
        if not endpoint["variants"]:
            endpoint["variants"].append({"name": DEFAULT_VARIANT})
        for i, variant in enumerate(endpoint["variants"]):
            variant.setdefault(
                "name", DEFAULT_VARIANT if len(endpoint["variants"]) == 1 else f"variant-{i + 1}"
            )
    return _FlagReader.convert({"endpoints": endpoints})


class _FlagReader(_Reader):
    """Errors in flag-built documents name the flag and the key (``--variant: weight: must be ...``)."""

    def fail(self, path: str, message: str) -> UsageError:
        if ".variants[" in path:
            key = path.split("]", 2)[-1].lstrip(".")
            flag_key = next((k for k, (p, _) in VARIANT_FLAG_KEYS.items() if ".".join(p) == key), key)
            return UsageError("--variant", f"{flag_key}: {message}" if flag_key else message)
        if path.endswith(".name"):
            return UsageError("--endpoint", message)
        return UsageError("--variant", f"{path}: {message}" if path else message)

    @classmethod
    def convert(cls, doc: dict) -> Config:
        config = from_dict(doc, cls("flags"))
        config.source = "flags"
        return config


def parse_access_key_flag(spec: str) -> AccessKey:
    """``KEY_ID:SECRET[:SESSION_TOKEN[:EXPIRES_AT]]`` (expiry in unix seconds)."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4 or not all(parts[:2]):
        raise UsageError("--access-key", "expected KEY_ID:SECRET[:SESSION_TOKEN[:EXPIRES_AT_UNIX_SECONDS]]")
    doc: dict[str, Any] = {"secret": parts[1]}
    if len(parts) > 2 and parts[2]:
        doc["session_token"] = parts[2]
    if len(parts) > 3:
        try:
            doc["expires_at"] = float(parts[3])
        except ValueError:
            raise UsageError("--access-key", f"expiry must be unix seconds, got '{parts[3]}'") from None
    keys = _access_keys({parts[0]: doc}, _FlagAccessReader("--access-key"))
    return keys[parts[0]]


class _FlagAccessReader(_Reader):
    def fail(self, path: str, message: str) -> UsageError:
        return UsageError(self.source, message)


def region_flag(value: str) -> str:
    return _region(value, _FlagAccessReader("--region"))
