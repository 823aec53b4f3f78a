"""The HTTP server: an ``asyncio.Protocol`` fed by ``httptools`` (no framework), so that a request is
parse -> route -> capacity model -> respond, with nothing else on the path.

Routes (one port): the runtime API ``POST /endpoints/{name}/invocations`` and
``.../invocations-response-stream``; the container API ``GET /ping`` and ``POST /invocations``;
``GET /metrics``; the control API under ``/_emulator/`` (a prefix no SageMaker path can have).

HTTP/1.1 keep-alive, ``Connection: close``, HTTP/1.0, ``Expect: 100-continue`` and pipelining
(requests on one connection are answered one at a time, in order) are handled.
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
from urllib.parse import unquote

import httptools

from smload import errors

from . import sigv4, wire
from .capacity import DROP, EndpointRuntime, VariantRuntime
from .config import STREAM_ERRORS, Config, ErrorSpec
from .stats import DROPPED, UNKNOWN, Stats

MAX_BODY = 6 * 1024 * 1024  # BodyBlob's max in the service model: 6 MiB
MAX_PIPELINED = 64  # requests parsed ahead on one connection before we stop reading it

_monotonic = time.monotonic
_status_lines = {code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in wire.REASON.items()}


def _status_line(code: int) -> bytes:
    line = _status_lines.get(code)
    if line is None:
        line = _status_lines[code] = f"HTTP/1.1 {code} Status {code}\r\n".encode()
    return line


class Request:
    __slots__ = ("method", "url", "headers", "body", "size", "keep_alive", "received")

    def __init__(self, method: bytes, url: bytes, headers: dict, body: bytes, size: int, keep_alive: bool,
                 received: float) -> None:
        self.method = method
        self.url = url
        self.headers = headers  # lower-case bytes name -> bytes value (repeated headers joined by ",")
        self.body = body
        self.size = size  # bytes received, even past MAX_BODY (the body itself is not kept past it)
        self.keep_alive = keep_alive
        self.received = received  # monotonic: the whole request is in


class Job:
    """A runtime request on its way through a variant: waiting, in a slot, or streaming."""

    __slots__ = ("conn", "req", "variant", "vstats", "fault", "stream", "started", "due", "timer", "expired",
                 "container")

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


class Connection(asyncio.Protocol):
    __slots__ = ("app", "parser", "transport", "url", "headers", "body", "size", "pending", "busy", "closed")

    def __init__(self, app: App) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.pending: deque[Request] = deque()
        self.busy = False  # a request of this connection is being answered
        self.closed = False

    # --- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.send_plain(400, b"upgrades are not supported\n", close=True)
        except httptools.HttpParserCallbackError:  # our own bug: say so, then drop the connection
            import traceback

            traceback.print_exc()
            self.close()
        except httptools.HttpParserError as exc:
            self.send_plain(400, f"malformed HTTP request: {exc}\n".encode(), close=True)

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        headers = self.headers
        if name in headers:
            headers[name] += b"," + value
        else:
            headers[name] = value

    def on_headers_complete(self) -> None:
        if self.headers.get(b"expect", b"").lower() == b"100-continue" and not self.closed:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY + 1:
            self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        req = Request(parser.get_method(), self.url, self.headers, body, self.size, parser.should_keep_alive(),
                      _monotonic())
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
            if len(self.pending) == MAX_PIPELINED - 1:
                self.transport.resume_reading()
            self.app.dispatch(self, req)
        else:
            self.busy = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def send_plain(self, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
                   keep_alive: bool = True, close: bool = False) -> None:
        keep = keep_alive and not close
        self.send(self.app.head(status, content_type, len(body), b"", keep) + body, keep)


class App:
    """Routing, the capacity model's scheduling, and responses."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        self.region = config.region
        self.endpoints: dict[bytes, EndpointRuntime] = {}
        for endpoint in config.endpoints:
            runtimes = [VariantRuntime(endpoint.name, v, self.stats.variant(endpoint.name, v.name, v.slots))
                        for v in endpoint.variants]
            self.endpoints[endpoint.name.encode()] = EndpointRuntime(endpoint.name, runtimes)
        self.container_endpoint = config.endpoints[0].name.encode()
        self.bodies = {id(v): _fixed_body(v.config) for e in self.endpoints.values() for v in e.variants}
        self.verifier = sigv4.Verifier(config.access_keys, config.region) if config.strict_sigv4 else None
        self._auth_cache: tuple[bytes, sigv4.AuthError | None] = (b"", sigv4.MISSING_TOKEN)
        self._request_prefix = os.urandom(10).hex()
        self._request_count = 0
        self.date = formatdate(usegmt=True).encode()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._uv = False

    # --- time
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._uv = type(loop).__module__.startswith("uvloop")
        self._tick_date()

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

    def request_id(self) -> bytes:
        self._request_count += 1
        p = self._request_prefix
        return f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{self._request_count:012x}".encode()

    def head(self, status: int, content_type: bytes, length: int, extra: bytes, keep_alive: bool) -> bytes:
        return b"%sContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\nx-amzn-RequestId: %s\r\n%s%s\r\n" % (
            _status_line(status), content_type, length, self.date, self.request_id(), extra,
            b"" if keep_alive else b"Connection: close\r\n")

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
                self.invoke(conn, req, name, False, unsupported="InvokeEndpointAsync is not emulated: use InvokeEndpoint.")
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
        body = json.dumps({"message": None}).encode()
        conn.send(self.head(404, b"application/json", len(body), b"x-amzn-ErrorType: UnknownOperationException\r\n",
                            req.keep_alive) + body, req.keep_alive)

    def control(self, conn: Connection, req: Request, what: bytes, method: bytes) -> None:
        if what == b"stats" and method == b"GET":
            body = self.stats.to_json()
        elif what == b"reset" and method == b"POST":
            self.stats.reset()
            body = {"reset": True}
        elif what == b"config" and method == b"GET":
            body = self.config.to_json()
        else:
            conn.send_plain(404, b"unknown control API path: GET /_emulator/stats, POST /_emulator/reset, "
                                 b"GET /_emulator/config\n", keep_alive=req.keep_alive)
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
        path_str, _, query = req.url.decode("latin-1").partition("?")
        text_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        return self.verifier.verify(req.method.decode(), path_str, query, text_headers, req.body)

    def invoke(self, conn: Connection, req: Request, raw_name: bytes, stream: bool, unsupported: str | None = None) -> None:
        endpoint = self.endpoints.get(raw_name)
        target = req.headers.get(b"x-amzn-sagemaker-target-variant")
        auth_error = self.authenticate(req)
        if auth_error is not None or endpoint is None or unsupported:
            name = endpoint.name if endpoint else _decode_name(raw_name)
            vstats = self.stats.variant(name, target.decode("latin-1") if target else UNKNOWN)
            vstats.requests += 1
            if auth_error is not None:
                status = auth_error.status
                self.fail(conn, req, vstats, status, auth_error.code + sigv4.CORAL, auth_error.message,
                          errors.ACCESS_DENIED)
            else:
                message = unsupported or f"Endpoint {name} of account {wire.ACCOUNT} not found."
                self.fail(conn, req, vstats, 400, errors.VALIDATION_ERROR, message, errors.VALIDATION_ERROR)
            return
        name = endpoint.name
        if target is None:
            variant = endpoint.pick()
        else:
            variant = endpoint.by_name.get(target.decode("latin-1"))
            if variant is None:
                vstats = self.stats.variant(name, target.decode("latin-1"))
                vstats.requests += 1
                self.fail(conn, req, vstats, 400, errors.VALIDATION_ERROR,
                          f"Variant {target.decode('latin-1')} not found for endpoint {name} of account {wire.ACCOUNT}.",
                          errors.VALIDATION_ERROR, variant_header=b"")
                return
        vstats = variant.stats
        vstats.requests += 1
        vstats.arrived(req.received - self.stats.reset_at)
        if req.size > MAX_BODY:
            self.fail(conn, req, vstats, 400, errors.VALIDATION_ERROR,
                      f"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have "
                      f"length less than or equal to {MAX_BODY}", errors.VALIDATION_ERROR, variant.name_header)
            return
        fault = variant.fault(_monotonic() - self.stats.reset_at)
        if fault is not None and fault.error != errors.MODEL_ERROR:
            if fault is DROP:
                self.drop(conn, req, vstats)
            else:
                self.fail(conn, req, vstats, wire.STATUS[fault.error], fault.error, wire.fault_message(fault.error),
                          fault.error, variant.name_header)
            return
        self.submit(variant, Job(conn, req, variant, vstats, fault, stream, False))

    def container_invoke(self, conn: Connection, req: Request) -> None:
        """``POST /invocations``: the model container's own contract, served by the first endpoint's
        variants. No SigV4, no front-end errors: a model error is the model's HTTP status."""
        variant = self.endpoints[self.container_endpoint].pick()
        vstats = variant.stats
        vstats.requests += 1
        vstats.arrived(req.received - self.stats.reset_at)
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
            vstats.in_flight -= 1
            self.model_failure(job, variant.config.queue.on_full, "Model is overloaded: its request queue is full.")

    def expire(self, job: Job) -> None:
        """A request waited ``max_wait_ms`` in the queue: it leaves the queue with ``on_timeout``."""
        job.expired = True
        variant = job.variant
        variant.waiting -= 1
        job.vstats.queued -= 1
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
        """A slot became free at ``nominal_end``: the next live request in the queue takes it then."""
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
        vstats.in_flight -= 1
        self.release(variant, job.due)
        if job.fault is not None:
            self.model_failure(job, job.fault, "Internal server error (fault injected by the emulator)")
            return
        req = job.req
        body, content_type = self.response_body(variant, req)
        extra = variant.name_header
        custom = req.headers.get(b"x-amzn-sagemaker-custom-attributes")
        if custom is not None:
            extra += b"X-Amzn-SageMaker-Custom-Attributes: " + custom + b"\r\n"
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
            parts = parts[:len(parts) // 2] + [wire.stream_error(broken, "The model failed while streaming its "
                                                                         "response (fault injected by the emulator).",
                                                                 "ModelStreamError" if broken == "ModelStreamError" else None)]
        extra = (variant.name_header + b"X-Amzn-SageMaker-Content-Type: " + content_type + b"\r\n"
                 + b"Transfer-Encoding: chunked\r\n")
        custom = req.headers.get(b"x-amzn-sagemaker-custom-attributes")
        if custom is not None:
            extra += b"X-Amzn-SageMaker-Custom-Attributes: " + custom + b"\r\n"
        head = b"%sContent-Type: application/vnd.amazon.eventstream\r\nDate: %s\r\nx-amzn-RequestId: %s\r\n%s%s\r\n" % (
            _status_line(200), self.date, self.request_id(), extra, b"" if req.keep_alive else b"Connection: close\r\n")
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
            self.fail(job.conn, req, job.vstats, wire.STATUS[spec.error], spec.error, wire.fault_message(spec.error),
                      spec.error, variant.name_header, container=job.container)
            return
        status = spec.status if spec.status is not None else variant.config.faults.model_error_status
        if job.container:  # the container answers with its own status; 0 (no answer in time) as 504
            code = status if status >= 400 else 504
            body = original_message.encode()
            job.conn.send(self.head(code, b"text/plain; charset=utf-8", len(body), b"", req.keep_alive) + body,
                          req.keep_alive)
            job.vstats.answered(str(code), errors.HTTP_ERROR, _monotonic() - req.received)
            return
        body = wire.model_error_body(self.region, variant.endpoint, status, original_message)
        self.fail(job.conn, req, job.vstats, 424, errors.MODEL_ERROR, None, errors.MODEL_ERROR, variant.name_header,
                  body=body)

    def fail(self, conn: Connection, req: Request, vstats, status: int, code: str, message: str | None,
             error: str, variant_header: bytes = b"", body: bytes | None = None, container: bool = False) -> None:
        if container:
            body = (message or code).encode()
            conn.send(self.head(status, b"text/plain; charset=utf-8", len(body), b"", req.keep_alive) + body,
                      req.keep_alive)
            vstats.answered(str(status), errors.HTTP_ERROR, _monotonic() - req.received)
            return
        if body is None:
            body = wire.error_body(message)
        extra = b"x-amzn-ErrorType: " + code.encode() + b"\r\n" + variant_header
        conn.send(self.head(status, b"application/json", len(body), extra, req.keep_alive) + body, req.keep_alive)
        vstats.answered(str(status), error, _monotonic() - req.received)

    def drop(self, conn: Connection, req: Request, vstats) -> None:
        """Close the connection without answering; pipelined requests behind it are lost with it."""
        now = _monotonic()
        vstats.answered(DROPPED, errors.CONNECTION_ERROR, now - req.received)
        for lost in conn.pending:
            lost_stats = self.stats.variant(*self._lost_key(lost))
            lost_stats.requests += 1
            lost_stats.answered(DROPPED, errors.CONNECTION_ERROR, now - lost.received)
        conn.pending.clear()
        conn.close()

    def _lost_key(self, req: Request) -> tuple[str, str]:
        path = req.url.partition(b"?")[0]
        name = path[11:].partition(b"/")[0] if path.startswith(b"/endpoints/") else self.container_endpoint
        target = req.headers.get(b"x-amzn-sagemaker-target-variant")
        return _decode_name(name), target.decode("latin-1") if target else UNKNOWN


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
