"""LLM answers parsed as they arrive: which bytes are a generated token, and when they came.

A :class:`TokenStream` is fed the body of a streamed answer in whatever pieces the network gives
(the raw chunked body of the OpenAI-compatible route, or the ``PayloadPart`` bytes of an
``InvokeEndpointWithResponseStream`` event stream, which need not align with frames) and the time
each piece arrived. It finds the frames of the three stream formats LLM containers speak, detected
from the first bytes where that is unambiguous:

* ``openai`` (vLLM, SGLang, the OpenAI-compatible route): server-sent events of
  ``chat.completion.chunk``; a token is a chunk whose ``delta.content`` is not empty; a ``usage``
  object (``stream_options.include_usage``) gives the counts; ``data: [DONE]`` ends it;
* ``tgi``: server-sent events ``data:{"token":{...},...}``; the last carries ``details``;
* ``lmi``: JSON lines ``{"token":{...}}``; the last carries ``details``.

SSE (``data:`` framing) against JSON lines (``{`` first) is decided by the first byte; OpenAI
against TGI by the first frame's keys. A frame is looked at with ``bytes.find`` only: ``json.loads``
runs on the few frames that carry counts (usage, details) and, with a tokenizer, on token frames
for their text. That keeps a token's parse to about a microsecond (``bench/bench_llm_client.py``).

Each content frame counts as one token arrival: TTFT is the first one, every later one adds an
inter-token gap. Servers that pack several tokens into one frame are counted right by ``usage``,
not by the gaps.
"""

from __future__ import annotations

import json

SSE, JSON_LINES = "sse", "jsonl"
_CONTENT = b'"content":"'
_TOKEN = b'"token":{'
_USAGE = b'"usage":{'
_DETAILS = b'"details":{'
_DONE = b"[DONE]"


class TokenStream:
    """What one streamed answer said, as it arrived. Times are ``time.perf_counter()`` seconds."""

    __slots__ = (
        "framing",
        "buffer",
        "first",
        "last",
        "gaps",
        "chunks",
        "want_text",
        "texts",
        "input_tokens",
        "output_tokens",
        "error",
        "detail",
        "done",
    )

    def __init__(self, want_text: bool = False):
        self.framing: str | None = None
        self.buffer = b""
        self.first: float | None = None  # the first token's arrival
        self.last = 0.0
        self.gaps: list[float] = []  # seconds between consecutive token frames
        self.chunks = 0  # token frames
        self.want_text = want_text  # keep the generated text (a tokenizer will count it)
        self.texts: list[str] = []
        self.input_tokens: int | None = None  # from the server's usage / details
        self.output_tokens: int | None = None
        self.error: str | None = None  # an error frame in the stream (ModelStreamError)
        self.detail = ""
        self.done = False

    def feed(self, data: bytes, now: float) -> None:
        buffer = self.buffer + data if self.buffer else bytes(data)
        if self.framing is None:
            head = buffer.lstrip()
            if not head:
                return
            self.framing = JSON_LINES if head[:1] in (b"{", b"[") else SSE
        if self.framing == SSE:
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            events = buffer.split(b"\n\n")
            self.buffer = events.pop()
            for event in events:
                for line in event.split(b"\n"):
                    if line.startswith(b"data:"):
                        self._frame(line[5:].strip(), now)
        else:
            lines = buffer.split(b"\n")
            self.buffer = lines.pop()
            for line in lines:
                if line.strip():
                    self._frame(line, now)

    def close(self, now: float) -> None:
        """The answer ended: a last frame without its terminator still counts."""
        rest, self.buffer = self.buffer.strip(), b""
        if rest:
            self._frame(rest[5:].strip() if rest.startswith(b"data:") else rest, now)

    def _frame(self, payload: bytes, now: float) -> None:
        at = payload.find(_CONTENT)
        if at >= 0:  # OpenAI: a chunk with text (the first one may carry only the role: "content":"")
            if payload[at + 11 : at + 12] != b'"':
                self._token(now)
                if self.want_text:
                    self._openai_text(payload)
        elif payload.find(_TOKEN) >= 0:  # TGI / LMI
            self._token(now)
            if self.want_text:
                self._generate_text(payload)
        elif payload == _DONE:
            self.done = True
            return
        elif payload.startswith(b'{"error"') or payload.startswith(b'{"object":"error"'):
            self.error = "ModelStreamError"
            self.detail = payload[:200].decode("utf-8", "replace")
            return
        if payload.find(_USAGE) >= 0 or payload.find(_DETAILS) >= 0:
            self._counts(payload)

    def _token(self, now: float) -> None:
        if self.first is None:
            self.first = now
        else:
            self.gaps.append(now - self.last)
        self.last = now
        self.chunks += 1

    def _openai_text(self, payload: bytes) -> None:
        try:
            choices = json.loads(payload).get("choices") or ()
            self.texts.extend(
                c["delta"].get("content") or "" for c in choices if isinstance(c.get("delta"), dict)
            )
        except (ValueError, AttributeError, KeyError, TypeError):
            pass

    def _generate_text(self, payload: bytes) -> None:
        try:
            token = json.loads(payload)["token"]
            if not token.get("special"):
                self.texts.append(token.get("text") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass

    def _counts(self, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        counts(doc, self)


def counts(doc: object, into: TokenStream) -> None:
    """The token counts an answer (or its last frame) states: OpenAI ``usage``, TGI/LMI ``details``
    (``generated_tokens``; the prompt's ``input_length`` where the container gives it)."""
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    if not isinstance(doc, dict):
        return
    usage = doc.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            into.input_tokens = prompt
        if isinstance(completion, int):
            into.output_tokens = completion
    details = doc.get("details")
    if isinstance(details, dict):
        generated, prompt = details.get("generated_tokens"), details.get("input_length")
        if isinstance(generated, int):
            into.output_tokens = generated
        if isinstance(prompt, int):
            into.input_tokens = prompt


def parse_body(data: bytes, want_text: bool) -> TokenStream:
    """A whole (non-streamed) answer: OpenAI ``chat.completion``, TGI ``[{generated_text, details}]``
    or LMI ``{generated_text, details}``. No token times: the answer came at once."""
    stream = TokenStream(want_text)
    try:
        doc = json.loads(data)
    except ValueError:
        return stream
    counts(doc, stream)
    if want_text:
        first = doc[0] if isinstance(doc, list) and doc else doc
        if isinstance(first, dict):
            text = first.get("generated_text")
            if text is None:
                choices = first.get("choices") or ()
                text = "".join(
                    (c.get("message") or {}).get("content") or "" for c in choices if isinstance(c, dict)
                )
            if isinstance(text, str):
                stream.texts.append(text)
    return stream
