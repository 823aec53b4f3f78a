"""Sending LLM requests, with every token timed as it arrives (:mod:`.token_stream`):

* ``--api invoke`` / ``stream``: the runtime API, signed with our SigV4 as the classic fast path
  signs; a response stream's ``PayloadPart`` bytes are decoded and parsed as they arrive;
* ``--api openai``: SageMaker's OpenAI-compatible route, ``Authorization: Bearer`` with a token
  minted from the botocore credentials and minted again before it expires (:mod:`.bearer`); the
  server-sent events of the chunked body are parsed as they arrive.

The classic request path (:class:`~.transport.FastTransport`) is not touched: an LLM test gets this
transport instead. ``--client boto3`` has a twin for invoke and stream (:class:`LLMBoto3Transport`).
"""

from __future__ import annotations

import time
from typing import Any

from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPSocketPoolResponse

from smload import errors
from smload.usage import UsageError

from .bearer import TokenSource
from .options import Settings
from .payloads import Payload
from .sigv4 import host_header
from .token_stream import TokenStream, parse_body
from .transport import (
    _BLOCK,
    USER_AGENT,
    VARIANT_HEADER,
    Boto3Transport,
    FastTransport,
    Outcome,
    _error_answer,
    _failure,
    _Headers,
    _StreamDecoder,
    send_request,
)

_perf_counter = time.perf_counter


class _EventTokens(_StreamDecoder):
    """An event stream whose PayloadParts carry an LLM stream (frames need not align with parts)."""

    __slots__ = ("tokens",)

    def __init__(self, start: float, tokens: TokenStream):
        super().__init__(start)
        self.tokens = tokens

    def feed(self, data: bytes) -> None:
        self.buffer.add_data(bytes(data))
        now = _perf_counter()
        for message in self.buffer:
            headers = message.headers
            kind = headers.get(":message-type")
            if kind == "event" and headers.get(":event-type") == "PayloadPart":
                if self.first_part_ms is None:
                    self.first_part_ms = (now - self.start) * 1000
                self.parts += 1
                self.length += len(message.payload)
                self.tokens.feed(message.payload, now)
            elif kind in ("exception", "error") and self.error is None:
                code = headers.get(":exception-type") or headers.get(":error-code") or "InternalStreamFailure"
                self.error = errors.from_error_code(code, None)
                self.detail = message.payload[:200].decode("utf-8", "replace")


class _TokenResponse(HTTPSocketPoolResponse):
    """A 200's body fed to a token parser as it arrives (raw SSE, or an event stream's decoder)."""

    def __init__(self, sock: Any, pool: ConnectionPool, sink: Any, **kwargs: Any):
        self.sink = sink  # before the headers are read: body bytes may come with them
        self.received = 0
        super().__init__(sock, pool, **kwargs)

    def _on_body(self, buf: bytearray) -> None:
        if self.get_code() == 200:
            self.received += len(buf)
            sink = self.sink
            if isinstance(sink, TokenStream):
                sink.feed(bytes(buf), _perf_counter())
            else:
                sink.feed(buf)
        else:  # an error answer: small, kept whole
            super()._on_body(buf)


class LLMFastTransport(FastTransport):
    """One user's connection for LLM requests (a FastTransport's pool and signers)."""

    def __init__(
        self,
        settings: Settings,
        credentials: Any,
        ca_bundle: str | None = None,
        tokens: TokenSource | None = None,
    ):
        super().__init__(settings, credentials, ca_bundle)
        self._bearer = tokens
        self._want_text = settings.llm is not None and settings.llm.counter is not None
        self._host = host_header(settings.scheme, settings.host, settings.port)

    def _bearer_head(self, settings: Settings, payload: Payload) -> bytes:
        headers = "".join(
            f"{name}: {value}\r\n"
            for name, value in settings.sagemaker_headers()
            if name.lower().startswith("x-amzn-sagemaker-target-variant")
        )
        return (
            f"POST {settings.path} HTTP/1.1\r\nHost: {self._host}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: {payload.content_type}\r\nAccept: text/event-stream\r\n"
            f"Authorization: {self._bearer.authorization()}\r\n{headers}"
            f"Content-Length: {len(payload.body)}\r\n\r\n"
        ).encode("latin-1")

    def _signed_head(self, settings: Settings, payload: Payload) -> bytes:
        if settings is self._settings:
            signer = self._signer
        else:
            from .transport import signer_for

            signer = self._signers.get(settings) or self._signers.setdefault(settings, signer_for(settings))
            self._settings, self._signer = settings, signer
        frozen = self._credentials.get_frozen_credentials()
        return signer.sign(
            frozen.access_key,
            frozen.secret_key,
            frozen.token,
            payload.content_type,
            payload.sha256,
            len(payload.body),
        ).head.encode("latin-1")

    def invoke(self, settings: Settings, payload: Payload) -> Outcome:
        openai = self._bearer is not None
        head = self._bearer_head(settings, payload) if openai else self._signed_head(settings, payload)
        body = payload.body
        pool = self._pool
        start = _perf_counter()
        sock = send_request(pool, head, body, start)
        if isinstance(sock, Outcome):
            return sock
        tokens = TokenStream(self._want_text)
        decoder = None
        try:
            if openai:
                sink: Any = tokens
            elif settings.stream:
                sink = decoder = _EventTokens(start, tokens)
            else:
                sink = None
            if sink is None:
                response = HTTPSocketPoolResponse(
                    sock, pool, block_size=_BLOCK, method="POST", headers_type=_Headers
                )
            else:
                response = _TokenResponse(
                    sock, pool, sink, block_size=_BLOCK, method="POST", headers_type=_Headers
                )
            data = response.read()
            end = _perf_counter()
        except Exception as err:
            outcome = _failure(err, start)
            outcome.tokens, outcome.start = tokens, start
            return outcome
        elapsed = (end - start) * 1000
        status = response.status_code
        variant = response.get(VARIANT_HEADER)
        if status != 200:
            error, detail = _error_answer(status, response, data)
            return Outcome(status, variant, data, len(data), error, detail, elapsed)
        if sink is None:
            tokens = parse_body(data, self._want_text)
            return Outcome(status, variant, data, len(data), None, "", elapsed, tokens=tokens, start=start)
        tokens.close(end)
        if decoder is not None:
            return Outcome(
                status,
                variant,
                None,
                decoder.length,
                decoder.error or tokens.error,
                decoder.detail or tokens.detail,
                elapsed,
                decoder.first_part_ms,
                decoder.parts,
                tokens,
                start,
            )
        return Outcome(
            status,
            variant,
            None,
            response.received,
            tokens.error,
            tokens.detail,
            elapsed,
            tokens=tokens,
            start=start,
        )


class LLMBoto3Transport(Boto3Transport):
    """The reference path for LLM requests: boto3's client, the stream's parts parsed as they come."""

    def __init__(self, client: Any, want_text: bool):
        super().__init__(client)
        self._want_text = want_text

    def invoke(self, settings: Settings, payload: Payload) -> Outcome:
        try:
            kwargs = self._kwargs[settings]
        except KeyError:
            kwargs = self._kwargs[settings] = self._call_kwargs(settings)
        start = _perf_counter()
        if not settings.stream:
            outcome = super().invoke(settings, payload)
            if outcome.error is None and outcome.body is not None:
                outcome.tokens, outcome.start = parse_body(outcome.body, self._want_text), start
            return outcome
        tokens = TokenStream(self._want_text)
        variant = None
        first_part_ms, parts, length = None, 0, 0
        try:
            answer = self._client.invoke_endpoint_with_response_stream(
                Body=payload.body, ContentType=payload.content_type, **kwargs
            )
            variant = answer.get("InvokedProductionVariant")
            for event in answer["Body"]:
                part = event.get("PayloadPart")
                if part is not None:
                    now = _perf_counter()
                    if first_part_ms is None:
                        first_part_ms = (now - start) * 1000
                    data = part.get("Bytes", b"")
                    parts += 1
                    length += len(data)
                    tokens.feed(data, now)
        except Exception as err:
            from .transport import _variant_of

            outcome = _failure(err, start, variant or _variant_of(err))
            outcome.first_part_ms, outcome.parts, outcome.length = first_part_ms, parts, length
            outcome.tokens, outcome.start = tokens, start
            return outcome
        end = _perf_counter()
        tokens.close(end)
        return Outcome(
            200,
            variant,
            None,
            length,
            tokens.error,
            tokens.detail,
            (end - start) * 1000,
            first_part_ms,
            parts,
            tokens,
            start,
        )


def probe_openai_route(settings: Settings, credentials: Any, ca_bundle: str | None) -> None:
    """Before any load: does the endpoint have the OpenAI-compatible route? One request with an empty
    JSON body, which a chat-completions container refuses (400) without generating anything and a
    classic model's container does not know (404). Raises UsageError for the 404."""
    transport = LLMFastTransport(settings, credentials, ca_bundle, TokenSource(credentials, settings.region))
    try:
        outcome = transport.invoke(settings, Payload.of(b"{}", "application/json"))
    finally:
        transport.close()
    if outcome.status == 404:
        target = settings.inference_component or settings.target_variant or settings.endpoint_name
        raise UsageError(
            "--api",
            f"openai: {target} has no OpenAI-compatible route (404: a classic model, not an LLM "
            "container?): use --api invoke or --api stream",
        )
