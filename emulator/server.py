"""The HTTP server: an ``asyncio.Protocol`` fed by ``httptools`` (no framework), so that a request is
parse -> route -> capacity model -> respond, with nothing else on the path.

Routes (one port): the runtime API ``POST /endpoints/{name}/invocations`` and
``.../invocations-response-stream``; the OpenAI-compatible route ``.../openai/v1/chat/completions``
(openai_route); the container API ``GET /ping`` and ``POST /invocations``; ``GET /metrics``; the
control API under ``/_emulator/`` (a prefix no SageMaker path can have). LLM variants and inference
components are served by llm_server; the classic request path below stays as short as it was.

HTTP/1.1 keep-alive, ``Connection: close``, HTTP/1.0, ``Expect: 100-continue`` and pipelining
(requests on one connection are answered one at a time, in order) are handled.

A request head is held to an AWS front end's limits (an Application Load Balancer's quotas: a
16 KiB request line, 16 KiB per header line, 64 KiB for the whole head; and at most 100 header
lines, Apache's default): past them the answer is 414 URI Too Long or 431 Request Header Fields Too
Large, and the connection closes. A head that never ends is cut off once it has run 64 KiB past
the read it began in. A malformed request is answered 400 and the connection closes, but only
after every well-formed request before it on that connection has been answered, in order. None of
these is counted in the stats: they never reached the runtime API.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import deque
from email.utils import formatdate
from random import random as _random
from urllib.parse import unquote, unquote_to_bytes

import httptools

from smload import errors

from . import control_plane, llm_stats, openai_route, sigv4, wire
from .autoscaling import EmulatedScaling
from .capacity import DROP, EndpointRuntime, VariantRuntime
from .config import STREAM_ERRORS, Config, ErrorSpec
from .llm_server import AWS, BODY, CONTAINER, EVENTS, RAW_STREAM, LLMTarget
from .stats import DROPPED, UNCONFIGURED, UNKNOWN, Stats, VariantStats

MAX_BODY = 6 * 1024 * 1024  # BodyBlob's max in the service model: 6 MiB
MAX_PIPELINED = 64  # requests parsed ahead on one connection before we stop reading it
MAX_REQUEST_LINE = 16 * 1024  # the head's limits (module docstring): past them, 414 or 431
MAX_HEADER_LINE = 16 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100

_monotonic = time.monotonic
_status_lines = {code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in wire.REASON.items()}


def _status_line(code: int) -> bytes:
    line = _status_lines.get(code)
    if line is None:
        line = _status_lines[code] = f"HTTP/1.1 {code} Status {code}\r\n".encode()
    return line


class Request:
    __slots__ = ("method", "url", "headers", "body", "size", "keep_alive", "received")

    def __init__(
        self,
        method: bytes,
        url: bytes,
        headers: dict,
        body: bytes,
        size: int,
        keep_alive: bool,
        received: float,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers  # lower-case bytes name -> bytes value (repeated headers joined by ",")
        self.body = body
        self.size = size  # bytes received, even past MAX_BODY (the body itself is not kept past it)
        self.keep_alive = keep_alive
        self.received = received  # monotonic: the whole request is in


class Job:
    """A runtime request on its way through a variant: waiting, in a slot, or streaming."""

    __slots__ = (
        "conn",
        "req",
        "variant",
        "vstats",
        "fault",
        "stream",
        "started",
        "due",
        "timer",
        "expired",
        "container",
    )

    def __init__(self, conn, req, variant, vstats, fault, stream, container) -> None:
        self.conn = conn
        self.req = req
        self.variant = variant
        self.vstats = vstats
        self.fault = fault  # None, the ModelError this request ends in, or the error its stream breaks with
        self.stream = stream
        self.container = container  # the container API: plain HTTP errors, no AWS shapes
        self.started = 0.0  # nominal: when its slot became free (or it arrived, if one was free)
        self.due = 0.0  # nominal: when the model is done (the first part, when streaming)
        self.timer = None
        self.expired = False


class Refused(Exception):
    """Raised in a parser callback: the request breaks a limit of the head and gets ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Connection(asyncio.Protocol):
    __slots__ = (
        "app",
        "parser",
        "transport",
        "url",
        "headers",
        "repeated",
        "body",
        "size",
        "pending",
        "busy",
        "closed",
        "in_head",
        "head_pending",
        "read_size",
        "final",
    )

    def __init__(self, app: App) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.pending: deque[Request] = deque()
        self.busy = False  # a request of this connection is being answered
        self.closed = False
        self.repeated: dict | None = None  # name -> the values after the first, while a head is parsed
        self.in_head = 0  # 1: a request head began in the current read; 2: it began in an earlier one
        self.head_pending = 0  # bytes of an unfinished head after the read it began in
        self.read_size = 0
        self.final: bytes | None = None  # the refusal to send once the requests before it are answered

    # --- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.final is not None:  # refused: nothing after the refusal is read
            return
        self.read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, Refused):
                self.refuse(exc.__context__.status, exc.__context__.reason)
                return
            import traceback  # our own bug: say so, then drop the connection

            traceback.print_exc()
            self.close()
            return
        except httptools.HttpParserUpgrade:
            self.refuse(400, "upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            self.refuse(400, f"malformed HTTP request: {exc}")
            return
        if self.in_head:  # a head is still arriving: bound what it may take (module docstring)
            if self.in_head == 1:
                self.in_head = 2
                self.head_pending = 0
            else:
                self.head_pending += len(data)
                if self.head_pending > MAX_HEAD:
                    self.refuse(431, f"request header fields too large: the head passed {MAX_HEAD} bytes")

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []
        self.size = 0
        self.in_head = 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        headers = self.headers
        if name in headers:  # joined once the head is complete: linear in the number of repeats
            repeated = self.repeated
            if repeated is None:
                repeated = self.repeated = {}
            values = repeated.setdefault(name, [])
            values.append(value)
            if len(values) >= MAX_HEADERS:  # a flood of one header: stop parsing it at once
                raise Refused(431, f"request header fields too large: more than {MAX_HEADERS} header lines")
        else:
            headers[name] = value

    def on_headers_complete(self) -> None:
        headers = self.headers
        # A head that came whole in a read of at most 16 KiB breaks no size limit: only the count
        # needs a look then, and the request path stays as fast as it was.
        if (
            self.in_head == 2
            or self.read_size > MAX_HEADER_LINE
            or self.repeated is not None
            or len(headers) > MAX_HEADERS
        ):
            self.check_head()
        self.in_head = 0
        if b"expect" in headers and headers[b"expect"].lower() == b"100-continue" and not self.closed:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def check_head(self) -> None:
        """Hold the head to the limits (raises Refused); join repeated headers with ","."""
        if len(self.url) > MAX_REQUEST_LINE:
            raise Refused(414, f"URI too long: more than {MAX_REQUEST_LINE} bytes")
        headers, repeated = self.headers, self.repeated
        count, total = len(headers), len(self.url)
        lines = list(headers.items())
        if repeated is not None:
            count += sum(len(values) for values in repeated.values())
            lines += [(name, value) for name, values in repeated.items() for value in values]
        if count > MAX_HEADERS:
            raise Refused(431, f"request header fields too large: more than {MAX_HEADERS} header lines")
        for name, value in lines:
            size = len(name) + len(value) + 2
            if size > MAX_HEADER_LINE:
                raise Refused(
                    431, f"request header fields too large: a header line passed {MAX_HEADER_LINE} bytes"
                )
            total += size + 2
        if total > MAX_HEAD:
            raise Refused(431, f"request header fields too large: the head passed {MAX_HEAD} bytes")
        if repeated is not None:
            for name, values in repeated.items():
                # each value trimmed, as HTTP reads a field value and SigV4 canonicalises one
                headers[name] = b",".join([value.strip() for value in (headers[name], *values)])
            self.repeated = None

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY + 1:
            self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        req = Request(
            parser.get_method(),
            self.url,
            self.headers,
            body,
            self.size,
            parser.should_keep_alive(),
            _monotonic(),
        )
        if self.busy:
            self.pending.append(req)
            if len(self.pending) >= MAX_PIPELINED:
                self.transport.pause_reading()
        else:
            self.busy = True
            self.app.dispatch(self, req)

    # --- answering
    def send(self, data: bytes, keep_alive: bool) -> None:
        """The whole answer to the current request; then the next pipelined one."""
        if self.closed:
            return
        self.transport.write(data)
        if not keep_alive:
            self.close()
            return
        self.next()

    def next(self) -> None:
        if self.pending and not self.closed:
            req = self.pending.popleft()
            if len(self.pending) == MAX_PIPELINED - 1 and self.final is None:
                self.transport.resume_reading()
            self.app.dispatch(self, req)
        else:
            self.busy = False
            if self.final is not None:  # every request before the refusal is answered: now it
                self.finish()

    def refuse(self, status: int, reason: str) -> None:
        """Stop reading; answer ``status`` after the requests already received, then close."""
        body = reason.encode() + b"\n"
        self.final = self.app.head(status, b"text/plain; charset=utf-8", len(body), b"", False) + body
        self.transport.pause_reading()
        if not self.busy:
            self.finish()

    def finish(self) -> None:
        if not self.closed:
            self.transport.write(self.final)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def send_plain(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"text/plain; charset=utf-8",
        keep_alive: bool = True,
        close: bool = False,
    ) -> None:
        keep = keep_alive and not close
        self.send(self.app.head(status, content_type, len(body), b"", keep) + body, keep)


class App:
    """Routing, the capacity model's scheduling, and responses."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        self.region = config.region
        self.endpoints: dict[bytes, EndpointRuntime] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        for endpoint in config.endpoints:
            runtimes = [
                VariantRuntime(
                    endpoint.name, v, self.stats.variant(endpoint.name, v.name, v.slots, v.instances)
                )
                for v in endpoint.variants
            ]
            components = [
                VariantRuntime(
                    endpoint.name, c, self.stats.component(endpoint.name, c.name, c.slots, c.instances), True
                )
                for c in endpoint.components
            ]
            for runtime in runtimes + components:
                if runtime.config.llm is not None:
                    runtime.llm = LLMTarget(self, runtime)
            self.endpoints[endpoint.name.encode()] = EndpointRuntime(endpoint.name, runtimes, components)
        self.container_endpoint = config.endpoints[0].name.encode()
        self.bodies = {
            id(v): _fixed_body(v.config)
            for e in self.endpoints.values()
            for v in e.variants + list(e.components.values())
        }
        self.openai = openai_route.Route(self)
        self.stats.families.append(llm_stats.prometheus)
        self.verifier = sigv4.Verifier(config.access_keys, config.region) if config.strict_sigv4 else None
        self._auth_cache: tuple[bytes, sigv4.AuthError | None] = (b"", sigv4.MISSING_TOKEN)
        self._request_prefix = os.urandom(10).hex()
        self._request_count = 0
        self.date = formatdate(usegmt=True).encode()
        self._uv = False
        self.started_at = time.time()  # the endpoints' CreationTime (DescribeEndpoint)
        self.scaled: list[VariantRuntime] = []  # the autoscaled variants and components (set going at start)

    # --- time
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._uv = type(loop).__module__.startswith("uvloop")
        self._tick_date()
        for endpoint in self.endpoints.values():
            for runtime in endpoint.variants + list(endpoint.components.values()):
                if runtime.config.autoscaling is not None:
                    runtime.scaling = runtime.stats.scaling = EmulatedScaling(
                        self, runtime, self.config.time_scale
                    )
                    self.scaled.append(runtime)

    def _tick_date(self) -> None:
        self.date = formatdate(usegmt=True).encode()
        self.loop.call_later(1.0 - time.time() % 1.0, self._tick_date)

    def at(self, due: float, callback, arg) -> None:
        """Run ``callback(arg)`` at monotonic time ``due``. uvloop's timers tick in whole
        milliseconds of the same monotonic clock, truncated, and libuv sleeps a whole number of
        milliseconds from a point already inside the current one, so a timer fires on average half
        a millisecond after its tick: aiming at the tick just before ``due`` makes latencies
        unbiased (each within about +-1 ms, plus whatever delay a busy loop adds)."""
        if self._uv:
            delay_ms = math.floor(due * 1000.0) - math.floor(_monotonic() * 1000.0)
            if delay_ms > 0:
                self.loop.call_later(delay_ms / 1000.0, callback, arg)
            else:
                self.loop.call_soon(callback, arg)
        else:
            self.loop.call_at(due, callback, arg)

    def call_later(self, delay: float, callback, arg):
        return self.loop.call_later(delay, callback, arg)

    def request_id(self) -> bytes:
        self._request_count += 1
        p = self._request_prefix
        return f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{self._request_count:012x}".encode()

    def head(self, status: int, content_type: bytes, length: int, extra: bytes, keep_alive: bool) -> bytes:
        return b"%sContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\nx-amzn-RequestId: %s\r\n%s%s\r\n" % (
            _status_line(status),
            content_type,
            length,
            self.date,
            self.request_id(),
            extra,
            b"" if keep_alive else b"Connection: close\r\n",
        )

    # --- routing
    def dispatch(self, conn: Connection, req: Request) -> None:
        url = req.url
        path, _, _ = url.partition(b"?")
        method = req.method
        if path.startswith(b"/endpoints/"):
            name, _, operation = path[11:].partition(b"/")
            if operation in (b"invocations", b"invocations-response-stream") and method == b"POST":
                self.invoke(conn, req, name, operation != b"invocations")
                return
            if operation == b"async-invocations" and method == b"POST":
                self.invoke(
                    conn,
                    req,
                    name,
                    False,
                    unsupported="InvokeEndpointAsync is not emulated: use InvokeEndpoint.",
                )
                return
            route = openai_route.match(path) if method == b"POST" else None
            if route is not None:
                self.openai.handle(conn, req, *route)
                return
        elif path == b"/invocations" and method == b"POST":
            self.container_invoke(conn, req)
            return
        elif path == b"/ping" and method in (b"GET", b"HEAD"):
            conn.send_plain(200, b"", keep_alive=req.keep_alive)
            return
        elif path == b"/metrics" and method == b"GET":
            body = self.stats.prometheus().encode()
            conn.send_plain(200, body, b"text/plain; version=0.0.4; charset=utf-8", req.keep_alive)
            return
        elif path.startswith(b"/_emulator/"):
            self.control(conn, req, path[11:], method)
            return
        elif path == b"/" and method == b"POST" and b"x-amz-target" in req.headers:
            control_plane.handle(self, conn, req)
            return
        elif path == openai_route.SUFFIX and method == b"POST":
            self.openai.handle(conn, req, None, None)
            return
        body = json.dumps({"message": None}).encode()
        conn.send(
            self.head(
                404,
                b"application/json",
                len(body),
                b"x-amzn-ErrorType: UnknownOperationException\r\n",
                req.keep_alive,
            )
            + body,
            req.keep_alive,
        )

    def control(self, conn: Connection, req: Request, what: bytes, method: bytes) -> None:
        if what == b"stats" and method == b"GET":
            body = self.stats.to_json()
        elif what == b"requests" and method == b"GET":
            body = self.stats.requests_json()
        elif what == b"reset" and method == b"POST":
            self.stats.reset()
            now = _monotonic()
            for runtime in self.scaled:
                runtime.scaling.reset(now)
            body = {"reset": True}
        elif what == b"autoscaling" and method == b"GET":
            now = _monotonic()
            body = {"time_scale": self.config.time_scale, "endpoints": {}}
            for runtime in self.scaled:
                runtime.scaling.roll(now)
                group = "inference_components" if runtime.component else "variants"
                body["endpoints"].setdefault(runtime.endpoint, {}).setdefault(group, {})[runtime.name] = (
                    runtime.scaling.to_json(now)
                )
        elif what == b"config" and method == b"GET":
            body = self.config.to_json()
            openai_route.base_urls(body, req.headers.get(b"host", b"127.0.0.1").decode("latin-1"))
        else:
            conn.send_plain(
                404,
                b"unknown control API path: GET /_emulator/stats, GET /_emulator/requests, "
                b"POST /_emulator/reset, GET /_emulator/config, GET /_emulator/autoscaling\n",
                keep_alive=req.keep_alive,
            )
            return
        conn.send_plain(200, json.dumps(body).encode(), b"application/json", req.keep_alive)

    # --- the runtime API
    def authenticate(self, req: Request) -> sigv4.AuthError | None:
        headers = req.headers
        if self.verifier is None:
            value = headers.get(b"authorization")
            if value is None:
                return sigv4.MISSING_TOKEN
            cached_value, result = self._auth_cache
            if value != cached_value:  # one load generator sends the same well-formed shape each time
                result = sigv4.check_present({"authorization": value.decode("latin-1")})
                self._auth_cache = (value, result)
            return result
        if not headers.get(
            b"authorization", b""
        ).isascii():  # no SigV4 header is: refused before hmac sees it
            return sigv4.BAD_SIGNATURE
        path_str, _, query = req.url.decode("latin-1").partition("?")
        text_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        return self.verifier.verify(req.method.decode(), path_str, query, text_headers, req.body)

    def invoke(
        self, conn: Connection, req: Request, raw_name: bytes, stream: bool, unsupported: str | None = None
    ) -> None:
        endpoint = self.endpoints.get(raw_name)
        if endpoint is None and b"%" in raw_name:  # botocore percent-encodes path labels
            endpoint = self.endpoints.get(unquote_to_bytes(raw_name))
        target = req.headers.get(b"x-amzn-sagemaker-target-variant")
        auth_error = self.authenticate(req)
        if auth_error is not None or endpoint is None or unsupported:
            name = endpoint.name if endpoint else _decode_name(raw_name)
            vstats = self.unrouted(endpoint, target)
            vstats.requests += 1
            if auth_error is not None:
                status = auth_error.status
                self.fail(
                    conn,
                    req,
                    vstats,
                    status,
                    auth_error.code + sigv4.CORAL,
                    auth_error.message,
                    errors.ACCESS_DENIED,
                )
            else:
                message = unsupported or f"Endpoint {name} of account {wire.ACCOUNT} not found."
                self.fail(conn, req, vstats, 400, errors.VALIDATION_ERROR, message, errors.VALIDATION_ERROR)
            return
        if target is None and not endpoint.components:
            variant = endpoint.pick()
        else:
            variant = self.route_target(
                conn, req, endpoint, req.headers.get(b"x-amzn-sagemaker-inference-component")
            )
            if variant is None:
                return
        vstats = variant.stats
        vstats.requests += 1
        vstats.arrived(req.received - self.stats.reset_at)
        if req.size > MAX_BODY:
            self.fail(
                conn,
                req,
                vstats,
                400,
                errors.VALIDATION_ERROR,
                f"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have "
                f"length less than or equal to {MAX_BODY}",
                errors.VALIDATION_ERROR,
                variant.name_header,
            )
            return
        if variant.llm is not None:
            if not self.front_end_fault(conn, req, variant, AWS):
                variant.llm.handle(conn, req, EVENTS if stream else BODY, AWS)
            return
        fault = variant.fault(_monotonic() - self.stats.reset_at)
        if fault is not None and fault.error != errors.MODEL_ERROR:
            if fault is DROP:
                self.drop(conn, req, vstats)
            else:
                self.fail(
                    conn,
                    req,
                    vstats,
                    wire.STATUS[fault.error],
                    fault.error,
                    wire.fault_message(fault.error),
                    fault.error,
                    variant.name_header,
                )
            return
        self.submit(variant, Job(conn, req, variant, vstats, fault, stream, False))

    def route_target(
        self, conn: Connection, req: Request, endpoint: EndpointRuntime, raw_component: bytes | None
    ) -> VariantRuntime | None:
        """The variant or inference component a request goes to, or None once it was answered with
        the ValidationError AWS gives a missing or unknown one."""
        name = endpoint.name
        if raw_component is not None or endpoint.components:
            if raw_component is None:
                vstats = self.stats.variant(name, UNKNOWN)
                message = (
                    "Inference Component Name header is required for endpoints to which you plan to deploy "
                    "inference components. Please include Inference Component Name header or consider using "
                    "SageMaker models."
                )
            else:
                component = _decode_name(raw_component)
                target = endpoint.components.get(component)
                if target is not None:
                    return target
                vstats = self.stats.component(name, UNCONFIGURED)  # bounded: any unknown name, one label
                message = f"Inference Component {component} not found for endpoint {name} of account {wire.ACCOUNT}."
            vstats.requests += 1
            self.fail(conn, req, vstats, 400, errors.VALIDATION_ERROR, message, errors.VALIDATION_ERROR)
            return None
        header = req.headers.get(b"x-amzn-sagemaker-target-variant")
        if header is None:
            return endpoint.pick()
        variant = endpoint.by_name.get(header.decode("latin-1"))
        if variant is None:
            vstats = self.unrouted(endpoint, header)
            vstats.requests += 1
            self.fail(
                conn,
                req,
                vstats,
                400,
                errors.VALIDATION_ERROR,
                f"Variant {header.decode('latin-1')} not found for endpoint {name} of account {wire.ACCOUNT}.",
                errors.VALIDATION_ERROR,
                variant_header=b"",
            )
        return variant

    def front_end_fault(self, conn: Connection, req: Request, variant: VariantRuntime, style: int) -> bool:
        """An LLM variant's injected fault, if any, answered at once (True): front-end errors in AWS's
        shapes, a ModelError as the container's own error status (there is no model time to spend)."""
        fault = variant.fault(_monotonic() - self.stats.reset_at)
        if fault is None:
            return False
        if fault is DROP:
            self.drop(conn, req, variant.stats)
        elif fault.error == errors.MODEL_ERROR:
            status = fault.status if fault.status is not None else variant.config.faults.model_error_status
            variant.llm.container_error(
                conn, req, style, status or 500, "Internal server error (fault injected by the emulator)"
            )
        elif style == CONTAINER:
            return False  # no SageMaker front end in front of a container
        else:
            self.fail(
                conn,
                req,
                variant.stats,
                wire.STATUS[fault.error],
                fault.error,
                wire.fault_message(fault.error),
                fault.error,
                variant.name_header,
            )
        return True

    def container_invoke(self, conn: Connection, req: Request) -> None:
        """``POST /invocations``: the model container's own contract, served by the first endpoint's
        variants (or its first inference component). No SigV4, no front-end errors: a model error is
        the model's HTTP status."""
        endpoint = self.endpoints[self.container_endpoint]
        variant = endpoint.pick() if endpoint.variants else next(iter(endpoint.components.values()))
        vstats = variant.stats
        vstats.requests += 1
        vstats.arrived(req.received - self.stats.reset_at)
        if variant.llm is not None:
            if not self.front_end_fault(conn, req, variant, CONTAINER):
                variant.llm.handle(conn, req, RAW_STREAM, CONTAINER)
            return
        fault = variant.fault(_monotonic() - self.stats.reset_at)
        if fault is DROP:
            self.drop(conn, req, vstats)
            return
        if fault is not None and fault.error != errors.MODEL_ERROR:
            fault = None  # a front-end error: there is no SageMaker front end in front of a container
        self.submit(variant, Job(conn, req, variant, vstats, fault, False, True))

    # --- the capacity model
    def submit(self, variant: VariantRuntime, job: Job) -> None:
        vstats = job.vstats
        if variant.scaling is not None:
            now = _monotonic()
            variant.scaling.arrived(now)
            variant.scaling.flight(now, vstats.in_flight)
        vstats.in_flight += 1
        if variant.free > 0:
            variant.free -= 1
            self.serve(job, job.req.received)
        elif variant.waiting < variant.limit:
            variant.waiting += 1
            vstats.queued += 1
            variant.queue.append(job)
            job.timer = self.loop.call_later(variant.max_wait_s, self.expire, job)
        else:
            if variant.scaling is not None:
                variant.scaling.flight(_monotonic(), vstats.in_flight)
            vstats.in_flight -= 1
            self.model_failure(
                job, variant.config.queue.on_full, "Model is overloaded: its request queue is full."
            )

    def expire(self, job: Job) -> None:
        """A request waited ``max_wait_ms`` in the queue: it leaves the queue with ``on_timeout``."""
        job.expired = True
        variant = job.variant
        variant.waiting -= 1
        job.vstats.queued -= 1
        if variant.scaling is not None:
            variant.scaling.flight(_monotonic(), job.vstats.in_flight)
        job.vstats.in_flight -= 1
        self.model_failure(job, variant.config.queue.on_timeout, wire.TIMEOUT_MESSAGE)

    def serve(self, job: Job, start: float) -> None:
        job.started = start
        variant = job.variant
        service = variant.service_time(job.req.size)
        if variant.stalls:  # the stall fault: every slot pauses
            origin = self.stats.reset_at
            due = job.due = origin + variant.finish(start - origin, service)
        else:
            due = job.due = start + service
        if job.stream and job.fault is None:
            self.at(due, self.stream_first, job)
        else:
            self.at(due, self.complete, job)

    def release(self, variant: VariantRuntime, nominal_end: float) -> None:
        """A slot became free at ``nominal_end``: the next live request in the queue takes it then.
        While autoscaling drains removed instances (fewer free slots than none), the slot goes with them."""
        if variant.free < 0:
            variant.free += 1
            if variant.free == 0:
                variant.scaling.drained(_monotonic())
            return
        queue = variant.queue
        while queue:
            job = queue.popleft()
            if job.expired:
                continue
            job.timer.cancel()
            variant.waiting -= 1
            job.vstats.queued -= 1
            self.serve(job, nominal_end)
            return
        variant.free += 1

    def complete(self, job: Job) -> None:
        variant = job.variant
        vstats = job.vstats
        if variant.scaling is not None:
            variant.scaling.flight(_monotonic(), vstats.in_flight)
        vstats.in_flight -= 1
        self.release(variant, job.due)
        if job.fault is not None:
            self.model_failure(job, job.fault, "Internal server error (fault injected by the emulator)")
            return
        req = job.req
        body, content_type = self.response_body(variant, req)
        extra = variant.name_header + wire.echoed(req.headers, stream=False)
        job.conn.send(self.head(200, content_type, len(body), extra, req.keep_alive) + body, req.keep_alive)
        self.account_ok(job)

    def account_ok(self, job: Job) -> None:
        now = _monotonic()
        vstats = job.vstats
        seconds = now - job.req.received
        vstats.answered("200", None, seconds)
        vstats.latency.record(seconds * 1000.0)
        vstats.model_latency.record((now - job.started) * 1000.0)

    def response_body(self, variant: VariantRuntime, req: Request) -> tuple[bytes, bytes]:
        fixed = self.bodies[id(variant)]
        if fixed is not None:
            return fixed
        content_type = req.headers.get(b"content-type", b"application/octet-stream")
        return req.body, content_type

    # --- streaming: headers and the first part when the model starts answering, then one part per delay
    def stream_first(self, job: Job) -> None:
        variant = job.variant
        req = job.req
        body, content_type = self.response_body(variant, req)
        config = variant.config.stream
        parts = [wire.payload_part(p) for p in wire.split_parts(body, config.parts)]
        broken = None
        if config.error_rate and _random() < config.error_rate:  # the stream breaks halfway
            broken = config.error
            parts = parts[: len(parts) // 2] + [
                wire.stream_error(
                    broken,
                    "The model failed while streaming its response (fault injected by the emulator).",
                    "ModelStreamError" if broken == "ModelStreamError" else None,
                )
            ]
        extra = (
            variant.name_header
            + b"X-Amzn-SageMaker-Content-Type: "
            + content_type
            + b"\r\n"
            + b"Transfer-Encoding: chunked\r\n"
            + wire.echoed(req.headers, stream=True)
        )
        head = (
            b"%sContent-Type: application/vnd.amazon.eventstream\r\nDate: %s\r\nx-amzn-RequestId: %s\r\n%s%s\r\n"
            % (
                _status_line(200),
                self.date,
                self.request_id(),
                extra,
                b"" if req.keep_alive else b"Connection: close\r\n",
            )
        )
        if not job.conn.closed:
            job.conn.transport.write(head)
        job.fault = broken
        job.timer = (parts, 0, config.part_delay_ms / 1000.0, job.due)
        self.stream_next(job)

    def stream_next(self, job: Job) -> None:
        parts, index, delay, due = job.timer
        conn = job.conn
        part = parts[index]
        if not conn.closed:
            conn.transport.write(b"%x\r\n%s\r\n" % (len(part), part))
        index += 1
        if index < len(parts):
            job.timer = (parts, index, delay, due + delay)
            self.at(due + delay, self.stream_next, job)
            return
        if job.variant.scaling is not None:
            job.variant.scaling.flight(_monotonic(), job.vstats.in_flight)
        job.vstats.in_flight -= 1
        self.release(job.variant, due)
        if job.fault is None:
            self.account_ok(job)
        else:  # HTTP said 200, but the client raises the stream's error event
            job.vstats.answered("200", STREAM_ERRORS[job.fault], _monotonic() - job.req.received)
        conn.send(b"0\r\n\r\n", job.req.keep_alive)

    # --- failures
    def model_failure(self, job: Job, spec: ErrorSpec, original_message: str) -> None:
        """A model-level failure (queue full, queue timeout, or an injected ModelError)."""
        variant, req = job.variant, job.req
        if spec.error != errors.MODEL_ERROR:
            self.fail(
                job.conn,
                req,
                job.vstats,
                wire.STATUS[spec.error],
                spec.error,
                wire.fault_message(spec.error),
                spec.error,
                variant.name_header,
                container=job.container,
            )
            return
        status = spec.status if spec.status is not None else variant.config.faults.model_error_status
        if job.container:  # the container answers with its own status; 0 (no answer in time) as 504
            code = status if status >= 400 else 504
            body = original_message.encode()
            job.conn.send(
                self.head(code, b"text/plain; charset=utf-8", len(body), b"", req.keep_alive) + body,
                req.keep_alive,
            )
            job.vstats.answered(str(code), errors.HTTP_ERROR, _monotonic() - req.received)
            return
        body = wire.model_error_body(self.region, variant.endpoint, status, original_message)
        self.fail(
            job.conn,
            req,
            job.vstats,
            424,
            errors.MODEL_ERROR,
            None,
            errors.MODEL_ERROR,
            variant.name_header,
            body=body,
        )

    def fail(
        self,
        conn: Connection,
        req: Request,
        vstats,
        status: int,
        code: str,
        message: str | None,
        error: str,
        variant_header: bytes = b"",
        body: bytes | None = None,
        container: bool = False,
    ) -> None:
        if container:
            body = (message or code).encode()
            conn.send(
                self.head(status, b"text/plain; charset=utf-8", len(body), b"", req.keep_alive) + body,
                req.keep_alive,
            )
            vstats.answered(str(status), errors.HTTP_ERROR, _monotonic() - req.received)
            return
        if body is None:
            body = wire.error_body(message)
        extra = b"x-amzn-ErrorType: " + code.encode() + b"\r\n" + variant_header
        conn.send(
            self.head(status, b"application/json", len(body), extra, req.keep_alive) + body, req.keep_alive
        )
        vstats.answered(str(status), error, _monotonic() - req.received)

    def drop(self, conn: Connection, req: Request, vstats) -> None:
        """Close the connection without answering; pipelined requests behind it are lost with it."""
        now = _monotonic()
        vstats.answered(DROPPED, errors.CONNECTION_ERROR, now - req.received)
        for lost in conn.pending:
            lost_stats = self._lost_stats(lost)
            if lost_stats is not None:
                lost_stats.requests += 1
                lost_stats.answered(DROPPED, errors.CONNECTION_ERROR, now - lost.received)
        conn.pending.clear()
        conn.close()

    def unrouted(self, endpoint: EndpointRuntime | None, target: bytes | None) -> VariantStats:
        """Where a request that reached no variant is counted: under its endpoint and the variant its
        ``Target-Variant`` named, ``unknown`` when it named none, and ``(unknown)`` (UNCONFIGURED) for
        a name the configuration does not have, so that no client can grow the stats without bound."""
        if target is not None and endpoint is not None:
            variant = endpoint.by_name.get(target.decode("latin-1"))
            if variant is not None:
                return variant.stats
        return self.stats.variant(
            endpoint.name if endpoint is not None else UNCONFIGURED,
            UNKNOWN if target is None else UNCONFIGURED,
        )

    def _lost_stats(self, req: Request) -> VariantStats | None:
        """The stats of a pipelined request lost to a drop, if it is one that would have been counted."""
        path = req.url.partition(b"?")[0]
        if path == b"/invocations" and req.method == b"POST":
            endpoint = self.endpoints[self.container_endpoint]
        elif path.startswith(b"/endpoints/") and req.method == b"POST":
            raw_name, _, operation = path[11:].partition(b"/")
            if operation not in (b"invocations", b"invocations-response-stream", b"async-invocations"):
                return None
            endpoint = self.endpoints.get(unquote_to_bytes(raw_name))
        else:
            return None
        return self.unrouted(endpoint, req.headers.get(b"x-amzn-sagemaker-target-variant"))


def _decode_name(raw: bytes) -> str:
    name = raw.decode("latin-1")
    return unquote(name) if "%" in name else name


def _fixed_body(config) -> tuple[bytes, bytes] | None:
    """The response body and content type of a variant that does not echo (computed once)."""
    response = config.response
    if response.body == "echo":
        return None
    content_type = (response.content_type or "application/json").encode()
    if response.body == "fixed":
        return response.fixed.encode(), content_type
    return json_body(response.json_bytes), content_type


def json_body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes (>= 2): ``{"predictions":[0.5,...]}`` padded with spaces."""
    if size < 18:
        return b"[" + b" " * (size - 2) + b"]"
    body = b'{"predictions":[' + b",".join([b"0.5"] * ((size - 17) // 4)) + b"]}"
    return body + b" " * (size - len(body))


async def serve(config: Config, host: str, port: int, ready=None) -> None:
    loop = asyncio.get_running_loop()
    app = App(config)
    app.start(loop)
    server = await loop.create_server(lambda: Connection(app), host, port, reuse_address=True, backlog=1024)
    if ready is not None:
        ready(server)
    stop = asyncio.Event()
    for sig in ("SIGTERM", "SIGINT"):
        try:
            import signal

            loop.add_signal_handler(getattr(signal, sig), stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
            pass
    await stop.wait()
    server.close()
    sys.stdout.flush()
