"""The HTTP side of LLM variants: requests in, batched tokens out, in the shape each API answers.

One :class:`LLMTarget` per LLM variant or inference component holds its batching engine
(llm_model), its token rule (tokens) and its ground truth (llm_stats). A request becomes an
:class:`LLMJob` (an engine sequence that knows its connection) and is answered in one of four ways:

- ``EVENTS``: InvokeEndpointWithResponseStream: HTTP 200 with AWS event-stream framing, one
  ``PayloadPart`` per token frame of the variant's format (the whole frame in one part);
- ``RAW_STREAM``: the OpenAI route with ``"stream": true`` (OpenAI SSE), or the container API
  ``/invocations`` with ``"stream": true`` (the variant's format): the frames as a chunked body;
- ``BODY``: InvokeEndpoint, the OpenAI route without ``stream``, or ``/invocations``: one JSON body.

The HTTP head goes out with the first token (TTFB = TTFT, as from a real container). Errors take
the shape of the route: AWS JSON for the runtime API (a container's 400 becomes ModelError(400)),
an OpenAI ``{"error": ...}`` body with the container's status on the OpenAI route, plain text on the
container API.

``app``, ``conn`` and ``req`` below are the server's ``App``, ``Connection`` and ``Request`` (not
imported: the server imports this module).
"""

from __future__ import annotations

import time
from random import random
from typing import TYPE_CHECKING

from smload import errors

from . import token_formats, wire
from .config import STREAM_ERRORS, ErrorSpec
from .llm_model import Engine, Instance, Seq
from .llm_stats import LLMStats, record_n
from .token_formats import BadRequest, Frames
from .tokens import Tokens

if TYPE_CHECKING:
    from .capacity import VariantRuntime

_monotonic = time.monotonic

# How the answer is written
EVENTS, RAW_STREAM, BODY = 1, 2, 3
# Whose error shapes it uses
AWS, OPENAI, CONTAINER = 1, 2, 3

CLIENT_CLOSED = "client_closed"  # the status of a request whose client went away before its last token


class LLMTarget:
    """An LLM variant or inference component: engine, tokens, stats."""

    __slots__ = ("runtime", "llm", "engine", "tokens", "pieces", "stats", "model", "app")

    def __init__(self, app, runtime: VariantRuntime) -> None:
        config = runtime.config
        self.app = app
        self.runtime = runtime
        self.llm = llm = config.llm
        self.tokens = Tokens(llm.chars_per_token, llm.tokenizer)
        self.pieces = token_formats.json_pieces(self.tokens)
        self.model = llm.model or config.name
        self.engine = Engine(
            llm,
            config.instances,
            config.queue_limit,
            config.queue.max_wait_ms / 1000.0,
            deliver=self.deliver,
            flush=self.flush,
            expired=self.expired,
            at=app.at,
            call_later=app.call_later,
            on_admit=self.admitted,
        )
        self.stats = runtime.stats.llm = LLMStats(self.engine)

    # --- arrival
    def handle(
        self,
        conn,
        req,
        api: int,
        style: int,
        doc: dict | None = None,
        fmt: str | None = None,
    ) -> None:
        """Serve one request (already counted in ``requests`` and authenticated). ``doc``: the body
        already parsed (the OpenAI route reads it first); ``fmt``: the request/answer format
        (default: the variant's own)."""
        runtime = self.runtime
        vstats = runtime.stats
        fmt = fmt or self.llm.format
        try:
            prompt = (
                token_formats.parse_document(fmt, doc)
                if doc is not None
                else token_formats.parse_request(fmt, req.body)
            )
            input_tokens = self.tokens.count(prompt.text)
            max_tokens = prompt.max_tokens or self.llm.default_max_tokens
            if input_tokens + max_tokens > self.llm.kv_cache_tokens:
                raise BadRequest(
                    f"This model's maximum context length is {self.llm.kv_cache_tokens} tokens. However, "
                    f"you requested {input_tokens + max_tokens} tokens ({input_tokens} in the messages, "
                    f"{max_tokens} in the completion). Please reduce the length of the messages or "
                    f"completion."
                )
        except BadRequest as exc:
            self.container_error(conn, req, style, 400, str(exc))
            return
        if api == RAW_STREAM and not prompt.stream:
            api = BODY
        job = LLMJob(input_tokens, max_tokens, self.engine.output_length(max_tokens), req.received)
        job.conn = conn
        job.req = req
        job.api = api
        job.style = style
        job.frames = Frames(fmt, self.tokens, self.pieces, self.model, prompt.include_usage)
        error_rate = runtime.config.stream.error_rate
        if api == EVENTS and error_rate and random() < error_rate:
            job.break_at = job.n // 2  # the stream breaks after half its tokens, as a classic one
        vstats.in_flight += 1
        if not self.engine.submit(job):
            vstats.in_flight -= 1
            self.model_failure(
                job, runtime.config.queue.on_full, "Model is overloaded: its request queue is full."
            )
            return
        if job.instance is None:
            job.queued = True
            vstats.queued += 1

    def admitted(self, seq: LLMJob, start: float) -> None:
        self.stats.queue_wait.record(max(0.0, start - seq.arrived) * 1000.0)
        if seq.queued:
            seq.queued = False
            self.runtime.stats.queued -= 1

    def expired(self, seq: LLMJob) -> None:
        vstats = self.runtime.stats
        vstats.queued -= 1
        vstats.in_flight -= 1
        self.model_failure(seq, self.runtime.config.queue.on_timeout, wire.TIMEOUT_MESSAGE)

    # --- a step's tokens
    def deliver(self, instance: Instance, now: float, hold: bool) -> None:
        """Write each sequence's token of this step (``hold``: keep the non-final ones for ``flush``)."""
        stats = self.stats
        gap_ms = (now - instance.delivered_at) * 1000.0
        later = 0  # tokens that follow an earlier one of their request (inter-token gaps)
        written = 0
        for job in instance.running:
            i = job.emitted - 1
            conn = job.conn
            if conn.closed:
                if not job.aborted:
                    self.abort(job, now)
                continue
            last = job.emitted >= job.n
            api = job.api
            if i:
                later += 1
            if api == BODY:
                if i == 0:  # generated now; the answer leaves with its last token
                    self.first_token(job, now)
                if last:
                    self.finish(job, now)
                continue
            if i == job.break_at:
                self.break_stream(job, now)
                continue
            frames = job.frames
            if last:
                frame = frames.token(i, True, job.input_tokens, job.n, job.reason())
            else:
                frame = frames.token(i, False)
            if api == EVENTS:
                part = wire.payload_part(frame)
                data = b"%x\r\n%s\r\n" % (len(part), part)
            else:
                data = b"%x\r\n%s\r\n" % (len(frame), frame)
            written += 1
            held = job.out
            if held is not None:
                job.out = None
                data = b"".join(held) + data
            if last:
                tail = frames.end(job.input_tokens, job.n)
                if tail:
                    if api == EVENTS:
                        tail = wire.payload_part(tail)
                    data += b"%x\r\n%s\r\n" % (len(tail), tail)
            if i == 0:
                # Timed as it is handed to its socket, and never held: the newest request comes last in
                # the batch, after every older stream's write, which on a busy machine takes a while.
                data = self.stream_head(job) + data
                self.first_token(job, _monotonic())
            if last:
                self.finish(job, job.first_at if i == 0 else _monotonic(), data)
            elif hold and i:
                job.out = [data]
            else:
                conn.transport.write(data)
        stats.output_tokens += written
        if later:
            record_n(stats.itl, gap_ms, later)

    def first_token(self, job: LLMJob, at: float) -> None:
        job.first_at = at
        stats = self.stats
        stats.ttft.record((at - job.arrived) * 1000.0)
        stats.input_tokens += job.input_tokens

    def flush(self, instance: Instance) -> None:
        for job in instance.running:
            held = job.out
            if held is not None:
                job.out = None
                if not job.conn.closed:
                    job.conn.transport.write(b"".join(held))

    def stream_head(self, job: LLMJob) -> bytes:
        app = self.app
        req = job.req
        frames = job.frames
        extra = self.runtime.name_header
        if job.api == EVENTS:
            content_type = b"application/vnd.amazon.eventstream"
            extra += b"X-Amzn-SageMaker-Content-Type: " + frames.stream_content_type + b"\r\n"
        else:
            content_type = frames.stream_content_type
        if job.style == AWS:
            extra += wire.echoed(req.headers, stream=True)
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nDate: %s\r\nx-amzn-RequestId: %s\r\n%sTransfer-Encoding: chunked\r\n%s\r\n"
            % (
                content_type,
                app.date,
                app.request_id(),
                extra,
                b"" if req.keep_alive else b"Connection: close\r\n",
            )
        )

    def finish(self, job: LLMJob, now: float, last: bytes = b"") -> None:
        """The last token is out (or, for a body, generated): answer or close the stream, and count."""
        req = job.req
        stats = self.stats
        vstats = self.runtime.stats
        if job.api == BODY:
            body = job.frames.body(job.input_tokens, job.n, job.reason())
            extra = self.runtime.name_header if job.style != CONTAINER else b""
            if job.style == AWS:
                extra += wire.echoed(req.headers, stream=False)
            job.conn.send(
                self.app.head(200, b"application/json", len(body), extra, req.keep_alive) + body,
                req.keep_alive,
            )
            stats.output_tokens += job.n
        else:
            job.conn.send(last + b"0\r\n\r\n", req.keep_alive)  # the last frames and the end, one write
        e2e_s = now - job.arrived
        vstats.in_flight -= 1
        vstats.answered("200", None, e2e_s)
        vstats.latency.record(e2e_s * 1000.0)
        vstats.model_latency.record((now - job.admitted) * 1000.0)
        e2e_ms = e2e_s * 1000.0
        stats.e2e.record(e2e_ms)
        tpot_ms = None
        if job.n > 1:
            tpot_ms = (now - job.first_at) * 1000.0 / (job.n - 1)
            stats.tpot.record(tpot_ms)
        ttft_ms = (job.first_at - job.arrived) * 1000.0
        stats.journal.append((ttft_ms, tpot_ms, e2e_ms, job.input_tokens, job.n))  # per-request truth

    def break_stream(self, job: LLMJob, now: float) -> None:
        """An injected stream error (``stream.error_rate``): the event-stream exception after half the
        tokens, as a model failing mid-answer; the client raises it once the stream got this far."""
        error = self.runtime.config.stream.error
        event = wire.stream_error(
            error,
            "The model failed while streaming its response (fault injected by the emulator).",
            "ModelStreamError" if error == "ModelStreamError" else None,
        )
        data = b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event)
        if job.emitted == 1:
            data = self.stream_head(job) + data
        held = job.out
        if held is not None:
            job.out = None
            data = b"".join(held) + data
        job.aborted = True  # the engine frees its place in the batch
        job.conn.send(data, job.req.keep_alive)
        vstats = self.runtime.stats
        vstats.in_flight -= 1
        vstats.answered("200", STREAM_ERRORS[error], now - job.arrived)

    def abort(self, job: LLMJob, now: float) -> None:
        """The client closed its connection: the engine drops the sequence (as vLLM aborts it)."""
        job.aborted = True
        vstats = self.runtime.stats
        vstats.in_flight -= 1
        vstats.answered(CLIENT_CLOSED, None, now - job.arrived)
        self.stats.aborted += 1

    # --- failures
    def container_error(self, conn, req, style: int, status: int, message: str) -> None:
        """What the model container answers with ``status`` (a refused request, an overloaded model)."""
        runtime = self.runtime
        vstats = runtime.stats
        app = self.app
        now = _monotonic()
        if style == OPENAI:
            body = token_formats.openai_error(status, message)
            conn.send(
                app.head(status, b"application/json", len(body), b"", req.keep_alive) + body, req.keep_alive
            )
            vstats.answered(str(status), errors.HTTP_ERROR, now - req.received)
        elif style == CONTAINER:
            body = message.encode()
            conn.send(
                app.head(status, b"text/plain; charset=utf-8", len(body), b"", req.keep_alive) + body,
                req.keep_alive,
            )
            vstats.answered(str(status), errors.HTTP_ERROR, now - req.received)
        else:
            body = wire.model_error_body(app.region, runtime.endpoint, status, message)
            app.fail(
                conn,
                req,
                vstats,
                424,
                errors.MODEL_ERROR,
                None,
                errors.MODEL_ERROR,
                runtime.name_header,
                body=body,
            )

    def model_failure(self, job: LLMJob, spec: ErrorSpec, message: str) -> None:
        """A queue overflow or timeout, answered as configured (``on_full``, ``on_timeout``)."""
        runtime = self.runtime
        if spec.error != errors.MODEL_ERROR:
            self.app.fail(
                job.conn,
                job.req,
                runtime.stats,
                wire.STATUS[spec.error],
                spec.error,
                wire.fault_message(spec.error),
                spec.error,
                runtime.name_header,
            )
            return
        status = spec.status if spec.status is not None else runtime.config.faults.model_error_status
        if status == 0 and job.style != CONTAINER:  # the model never answered: the front end's timeout
            body = wire.model_error_body(self.app.region, runtime.endpoint, 0, message)
            self.app.fail(
                job.conn,
                job.req,
                runtime.stats,
                424,
                errors.MODEL_ERROR,
                None,
                errors.MODEL_ERROR,
                runtime.name_header,
                body=body,
            )
            return
        self.container_error(job.conn, job.req, job.style, status or 504, message)


class LLMJob(Seq):
    __slots__ = ("conn", "req", "api", "style", "frames", "first_at", "queued", "out", "break_at")

    def __init__(self, input_tokens: int, max_tokens: int, n: int, arrived: float) -> None:
        super().__init__(input_tokens, max_tokens, n, arrived)
        self.first_at = 0.0
        self.queued = False
        self.out: list[bytes] | None = None  # frames held for one write while the engine catches up
        self.break_at = -1  # the index of the token an injected stream error replaces (-1: none)

    def reason(self) -> str:
        return token_formats.finish_reason(self.frames.fmt, self.n >= self.max_tokens)
