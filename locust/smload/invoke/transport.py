"""The two ways of sending an invocation, with identical requests and identical outcomes:

* :class:`FastTransport` (``--client fast``, one per user): our SigV4 (:mod:`.sigv4`) written
  straight onto a keep-alive geventhttpclient connection, the response parsed by its C parser;
* :class:`Boto3Transport` (``--client boto3``, one per worker process): the reference path, a
  shared ``sagemaker-runtime`` client with retries off.

Each returns an :class:`Outcome`: status, variant, bytes, error type from the closed set
(``smload.errors``), time to last byte and, for response streams, time to first part. Neither
retries anything: a retry hides the very errors a load test exists to find.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import gevent.monkey
import gevent.ssl
from botocore.eventstream import EventStreamBuffer
from geventhttpclient.connectionpool import ConnectionPool, SSLConnectionPool
from geventhttpclient.response import HTTPSocketPoolResponse

from smload import errors
from smload.version import VERSION

from .options import Settings
from .payloads import Payload
from .sigv4 import Signer, host_header

USER_AGENT = f"sagemaker-loadtest/{VERSION}"
VARIANT_HEADER = "x-amzn-invoked-production-variant"
_BLOCK = 64 * 1024
_ONE_WRITE_MAX = 64 * 1024  # bodies up to this size go out in the same write as the head


class Outcome:
    """What one invocation did. ``error`` is None on success, else a closed-set error type."""

    __slots__ = (
        "status",
        "variant",
        "body",
        "length",
        "error",
        "detail",
        "response_time",
        "first_part_ms",
        "parts",
        "tokens",
        "start",
    )

    def __init__(
        self,
        status: int,
        variant: str | None,
        body: bytes | None,
        length: int,
        error: str | None,
        detail: str,
        response_time: float,
        first_part_ms: float | None = None,
        parts: int = 0,
        tokens: Any = None,
        start: float = 0.0,
    ):
        self.status = status
        self.variant = variant
        self.body = body
        self.length = length
        self.error = error
        self.detail = detail
        self.response_time = response_time
        self.first_part_ms = first_part_ms
        self.parts = parts
        self.tokens = tokens  # LLM answers: the smload.invoke.token_stream.TokenStream
        # LLM answers: perf_counter() when the request was sent (token times are relative to it)
        self.start = start


def _failure(error: BaseException, start: float, variant: str | None = None) -> Outcome:
    return Outcome(
        0,
        variant,
        None,
        0,
        errors.classify(error),
        f"{type(error).__name__}: {error}",
        (time.perf_counter() - start) * 1000,
    )


def _error_answer(status: int, headers: Any, body: bytes) -> tuple[str, str]:
    """(error type, detail) of a non-200 answer, read the way botocore's rest-json parser reads it."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    code = errors.error_code(headers.get("x-amzn-errortype"), parsed, status)
    original = parsed.get("OriginalStatusCode")
    detail = parsed.get("Message") or parsed.get("message") or body[:200].decode("utf-8", "replace")
    return errors.from_error_code(code, status, original if isinstance(original, int) else None), str(detail)


class _Headers(dict):
    """Response headers, lower-cased names: all we look up is a few names. geventhttpclient's own
    Headers keeps original case and repeated fields, at several times the cost per header."""

    __slots__ = ()

    def add(self, name: str, value: str) -> None:
        self[name.lower()] = value


class _StreamDecoder:
    """Counts the PayloadParts of an event stream as they arrive and keeps the first error event."""

    __slots__ = ("buffer", "start", "first_part_ms", "parts", "length", "error", "detail")

    def __init__(self, start: float):
        self.buffer = EventStreamBuffer()
        self.start = start
        self.first_part_ms: float | None = None
        self.parts = 0
        self.length = 0
        self.error: str | None = None
        self.detail = ""

    def feed(self, data: bytes) -> None:
        self.buffer.add_data(bytes(data))
        for message in self.buffer:
            headers = message.headers
            kind = headers.get(":message-type")
            if kind == "event" and headers.get(":event-type") == "PayloadPart":
                if self.first_part_ms is None:
                    self.first_part_ms = (time.perf_counter() - self.start) * 1000
                self.parts += 1
                self.length += len(message.payload)
            elif kind in ("exception", "error") and self.error is None:
                code = headers.get(":exception-type") or headers.get(":error-code") or "InternalStreamFailure"
                self.error = errors.from_error_code(code, None)
                self.detail = message.payload[:200].decode("utf-8", "replace")


class _StreamResponse(HTTPSocketPoolResponse):
    """A response whose body, when it is a 200, is decoded as an event stream while it arrives
    (for the time to first part) instead of being buffered until the end."""

    def __init__(self, sock: Any, pool: ConnectionPool, decoder: _StreamDecoder, **kwargs: Any):
        self.decoder = decoder  # before the headers are read: body bytes may come with them
        super().__init__(sock, pool, **kwargs)

    def _on_body(self, buf: bytearray) -> None:
        if self.get_code() == 200:
            self.decoder.feed(buf)
        else:  # an error answer: small, kept whole
            super()._on_body(buf)


def _tls_context(cafile: str | None = None) -> gevent.ssl.SSLContext:
    """The system trust store, plus the bundle geventhttpclient chose (certifi when the system has
    no CA file) or AWS_CA_BUNDLE, like botocore."""
    context = gevent.ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


_select = gevent.monkey.get_original("select", "select")  # the real one, even under monkey-patching


class _Tuned:
    """What our connection pools do differently from geventhttpclient's."""

    def after_connect(self, sock: Any) -> None:
        # the same as urllib3's default (and so boto3's): no Nagle delay on the last segment of a body
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _is_socket_alive(self, sock: Any) -> bool:
        # The pool checks an idle keep-alive connection before reusing it with select(timeout=0).
        # gevent's select yields to every other greenlet even then (gevent.sleep(0)), which put
        # ~1 ms of other users' work inside each measured request; the real select does not yield.
        try:
            if sock is None or sock.fileno() < 0:
                return False
            readable, _, _ = _select([sock.fileno()], [], [], 0.0)
            return not readable  # an idle connection has nothing to read: readable means closed
        except (OSError, ValueError):
            return False


class _Pool(_Tuned, ConnectionPool):
    pass


class _TLSPool(_Tuned, SSLConnectionPool):
    pass


def connection_pool(settings: Settings, ca_bundle: str | None = None) -> ConnectionPool:
    """One keep-alive connection, opened on first use and reopened when the server closed it."""
    kwargs = dict(
        size=1, connection_timeout=settings.connect_timeout, network_timeout=settings.request_timeout
    )
    if settings.scheme == "https":
        ssl_options = {"ca_certs": ca_bundle} if ca_bundle else None
        return _TLSPool(
            settings.host,
            settings.port,
            settings.host,
            settings.port,
            ssl_context_factory=_tls_context,
            ssl_options=ssl_options,
            **kwargs,
        )
    return _Pool(settings.host, settings.port, settings.host, settings.port, **kwargs)


def send_request(pool: ConnectionPool, head: bytes, body: bytes, start: float) -> Any:
    """A pooled connection with the request written on it, or the failure's Outcome."""
    try:
        sock = pool.get_socket()
    except Exception as err:
        return _failure(err, start)
    try:
        if len(body) <= _ONE_WRITE_MAX:
            sock.sendall(head + body)  # one write: head and body in one segment
        else:
            sock.sendall(head)
            sock.sendall(body)
    except BaseException as err:
        pool.release_socket(sock)
        if not isinstance(err, Exception):
            raise
        return _failure(err, start)
    return sock


def signer_for(settings: Settings) -> Signer:
    return Signer(
        settings.region,
        "POST",
        host_header(settings.scheme, settings.host, settings.port),
        settings.path,
        settings.sagemaker_headers(),
        user_agent=USER_AGENT,
    )


class FastTransport:
    """One user's connection: signs with our SigV4, sends, reads the whole answer."""

    def __init__(self, settings: Settings, credentials: Any, ca_bundle: str | None = None):
        self._credentials = credentials
        self._pool = connection_pool(settings, ca_bundle)
        self._signers: dict[Settings, Signer] = {}
        self._settings: Settings | None = None  # the last settings and their signer: the usual case
        self._signer: Signer | None = None

    def close(self) -> None:
        self._pool.close()

    def invoke(self, settings: Settings, payload: Payload) -> Outcome:
        if settings is self._settings:
            signer = self._signer
        else:
            signer = self._signers.get(settings) or self._signers.setdefault(settings, signer_for(settings))
            self._settings, self._signer = settings, signer
        body = payload.body
        frozen = self._credentials.get_frozen_credentials()  # refreshes temporary credentials when due
        head = signer.sign(
            frozen.access_key,
            frozen.secret_key,
            frozen.token,
            payload.content_type,
            payload.sha256,
            len(body),
        ).head.encode("latin-1")
        pool = self._pool
        start = time.perf_counter()
        sock = send_request(pool, head, body, start)
        if isinstance(sock, Outcome):
            return sock
        # from here on the response object owns the socket: it returns or closes it when done
        try:
            if settings.stream:
                return self._read_stream(sock, pool, start)
            response = HTTPSocketPoolResponse(
                sock, pool, block_size=_BLOCK, method="POST", headers_type=_Headers
            )
            data = response.read()
            elapsed = (time.perf_counter() - start) * 1000
        except Exception as err:
            return _failure(err, start)
        status = response.status_code
        variant = response.get(VARIANT_HEADER)
        if status == 200:
            return Outcome(status, variant, data, len(data), None, "", elapsed)
        error, detail = _error_answer(status, response, data)
        return Outcome(status, variant, data, len(data), error, detail, elapsed)

    def _read_stream(self, sock: Any, pool: ConnectionPool, start: float) -> Outcome:
        decoder = _StreamDecoder(start)
        response = _StreamResponse(
            sock, pool, decoder, block_size=_BLOCK, method="POST", headers_type=_Headers
        )
        data = response.read()  # drives the parser (and so the decoder) to the end of the answer
        elapsed = (time.perf_counter() - start) * 1000
        status = response.status_code
        variant = response.get(VARIANT_HEADER)
        if status != 200:
            error, detail = _error_answer(status, response, data)
            return Outcome(status, variant, data, len(data), error, detail, elapsed)
        return Outcome(
            status,
            variant,
            None,
            decoder.length,
            decoder.error,
            decoder.detail,
            elapsed,
            decoder.first_part_ms,
            decoder.parts,
        )


class Boto3Transport:
    """The reference path: boto3's ``sagemaker-runtime`` client, one per process, retries off."""

    def __init__(self, client: Any):
        self._client = client
        self._kwargs: dict[Settings, dict[str, str]] = {}

    @staticmethod
    def create_client(session: Any, settings: Settings, max_connections: int) -> Any:
        import boto3  # after Locust's monkey patching, like everything this module imports
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt: no hidden retries
            max_pool_connections=max(max_connections, 10),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout,
            user_agent_extra=USER_AGENT,
        )
        return boto3.Session(botocore_session=session).client(
            "sagemaker-runtime",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=config,
        )

    def close(self) -> None:
        pass  # shared by every user of the process

    def _call_kwargs(self, settings: Settings) -> dict[str, str]:
        return {"EndpointName": settings.endpoint_name, **settings.boto3_kwargs()}

    def invoke(self, settings: Settings, payload: Payload) -> Outcome:
        try:
            kwargs = self._kwargs[settings]
        except KeyError:
            kwargs = self._kwargs[settings] = self._call_kwargs(settings)
        start = time.perf_counter()
        variant = None
        try:
            if settings.stream:
                return self._invoke_stream(kwargs, payload, start)
            answer = self._client.invoke_endpoint(
                Body=payload.body, ContentType=payload.content_type, **kwargs
            )
            data = answer["Body"].read()
            elapsed = (time.perf_counter() - start) * 1000
        except Exception as err:
            variant = _variant_of(err)
            return _failure(err, start, variant)
        return Outcome(200, answer.get("InvokedProductionVariant"), data, len(data), None, "", elapsed)

    def _invoke_stream(self, kwargs: dict[str, str], payload: Payload, start: float) -> Outcome:
        answer = self._client.invoke_endpoint_with_response_stream(
            Body=payload.body, ContentType=payload.content_type, **kwargs
        )
        variant = answer.get("InvokedProductionVariant")
        first_part_ms, parts, length = None, 0, 0
        try:
            for event in answer["Body"]:
                part = event.get("PayloadPart")
                if part is not None:
                    if first_part_ms is None:
                        first_part_ms = (time.perf_counter() - start) * 1000
                    parts += 1
                    length += len(part.get("Bytes", b""))
        except Exception as err:
            outcome = _failure(err, start, variant)
            outcome.first_part_ms, outcome.parts, outcome.length = first_part_ms, parts, length
            return outcome
        return Outcome(
            200, variant, None, length, None, "", (time.perf_counter() - start) * 1000, first_part_ms, parts
        )


def _variant_of(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return headers.get(VARIANT_HEADER)
    return None
