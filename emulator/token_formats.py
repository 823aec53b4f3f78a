"""The request and response formats of LLM containers, as bytes on the wire.

Requests: an OpenAI Chat Completions body (``messages``, ``max_tokens`` or ``max_completion_tokens``,
``stream``, ``stream_options.include_usage``), or the TGI/LMI body (``inputs``,
``parameters.max_new_tokens``). A body the container would refuse raises :class:`BadRequest` with
the message a vLLM/TGI container gives (the caller answers 400 the way its API does).

Streams, one frame per generated token:
- ``openai``: server-sent events of ``chat.completion.chunk`` objects (vLLM's shape: the first
  chunk's delta carries the role, the last one the ``finish_reason``), then a ``usage`` chunk with
  empty ``choices`` when ``stream_options.include_usage`` is set (every other chunk then has
  ``"usage": null``), then ``data: [DONE]``.
- ``tgi``: server-sent events ``data:{"index","token":{"id","text","logprob","special"},
  "generated_text","details"}``, the last one with the whole text and ``details``.
- ``lmi``: JSON lines ``{"token":{"id","text","log_prob"}}``, the last one with ``generated_text`` and
  ``details`` (LMI's default ``jsonlines`` output formatter).

Non-streamed bodies: an OpenAI ``chat.completion`` with ``usage``; TGI's ``[{"generated_text",
"details"}]``; LMI's ``{"generated_text", "details"}``. ``details`` always carries
``finish_reason``, ``generated_tokens`` and ``input_length`` (the prompt tokens) so that every
format tells the client its token counts.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from .tokens import Tokens

_TOKEN_ID_BASE = 1000  # token ids in TGI/LMI frames: the index of the piece in the cycle, from here


class BadRequest(Exception):
    """What the container answers with 400."""


@dataclass(slots=True)
class Prompt:
    text: str
    max_tokens: int | None  # None: the variant's default
    stream: bool  # the body asks for a stream (what the OpenAI route decides by)
    include_usage: bool  # OpenAI stream_options.include_usage


def parse_request(fmt: str, body: bytes) -> Prompt:
    try:
        doc = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Invalid JSON in the request body: {exc}") from None
    return parse_document(fmt, doc)


def parse_document(fmt: str, doc) -> Prompt:
    """The prompt of a request body already parsed from JSON."""
    if not isinstance(doc, dict):
        raise BadRequest("The request body must be a JSON object")
    if fmt == "openai":
        return _openai_request(doc)
    return _generate_request(doc)


def _openai_request(doc: dict) -> Prompt:
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is a required property and must be a non-empty list")
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object with a role and a content")
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    max_tokens = doc.get("max_completion_tokens", doc.get("max_tokens"))
    options = doc.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Prompt(
        "".join(parts), _max_tokens(max_tokens, "max_tokens"), doc.get("stream") is True, include_usage
    )


def _generate_request(doc: dict) -> Prompt:
    inputs = doc.get("inputs")
    if not isinstance(inputs, str):
        raise BadRequest("'inputs' is a required property and must be a string")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    return Prompt(
        inputs,
        _max_tokens(parameters.get("max_new_tokens"), "max_new_tokens"),
        doc.get("stream") is True,
        False,
    )


def _max_tokens(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be at least 1, got {value!r}.")
    return value


def finish_reason(fmt: str, hit_length: bool) -> str:
    if hit_length:
        return "length"
    return "stop" if fmt == "openai" else "eos_token"


class Frames:
    """The frames of one request's answer in one format. ``token(i, last)`` is the frame of generated
    token ``i`` (0-based); ``end(...)`` what follows the last token; ``body(...)`` the whole
    non-streamed answer. Built once per request; the per-token work is a concatenation."""

    __slots__ = (
        "fmt",
        "tokens",
        "pieces",
        "head",
        "tail",
        "first_head",
        "last_tail",
        "model",
        "rid",
        "created",
        "include_usage",
    )

    def __init__(
        self, fmt: str, tokens: Tokens, pieces: tuple[bytes, ...], model: str, include_usage: bool
    ) -> None:
        self.fmt = fmt
        self.tokens = tokens
        self.pieces = pieces  # JSON string literals of the token pieces
        self.model = model
        self.rid = "chatcmpl-" + os.urandom(12).hex()
        self.created = int(time.time())
        self.include_usage = include_usage
        if fmt == "openai":
            usage = b',"usage":null' if include_usage else b""
            start = self._chunk_start().encode() + b'[{"index":0,"delta":{'
            self.head = start + b'"content":'
            self.first_head = start + b'"role":"assistant","content":'
            self.tail = b'},"logprobs":null,"finish_reason":null}]' + usage + b"}\n\n"
            self.last_tail = b'},"logprobs":null,"finish_reason":"%s"}]' + usage + b"}\n\n"
        elif fmt == "tgi":
            self.head = self.first_head = b'data:{"index":%d,"token":{"id":%d,"text":'
            self.tail = b',"logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n'
            self.last_tail = b',"logprob":-0.1,"special":false},"generated_text":%s,"details":%s}\n\n'
        else:
            self.head = self.first_head = b'{"token":{"id":%d,"text":'
            self.tail = b',"log_prob":-0.1}}\n'
            self.last_tail = b',"log_prob":-0.1},"generated_text":%s,"details":%s}\n'

    @property
    def stream_content_type(self) -> bytes:
        return b"application/jsonlines" if self.fmt == "lmi" else b"text/event-stream"

    def token(self, i: int, last: bool, input_tokens: int = 0, n: int = 0, reason: str = "") -> bytes:
        """The frame of token ``i``; for the last one (``last``) also ``n`` tokens in all, the prompt's
        ``input_tokens`` and the finish ``reason`` (TGI/LMI close with the whole text there)."""
        pieces = self.pieces
        k = i % len(pieces)
        fmt = self.fmt
        if fmt == "openai":
            head = self.first_head if i == 0 else self.head
            return head + pieces[k] + (self.last_tail % reason.encode() if last else self.tail)
        head = (self.head % (i, _TOKEN_ID_BASE + k)) if fmt == "tgi" else (self.head % (_TOKEN_ID_BASE + k))
        if not last:
            return head + pieces[k] + self.tail
        return (
            head + pieces[k] + self.last_tail % (self._text_json(n), self._details(reason, n, input_tokens))
        )

    def end(self, input_tokens: int, n: int) -> bytes:
        """What a stream sends after its last token: OpenAI's usage chunk (when asked for) and [DONE]."""
        if self.fmt != "openai":
            return b""
        out = b""
        if self.include_usage:
            out = f'{self._chunk_start()}[],"usage":{json.dumps(usage(input_tokens, n))}}}\n\n'.encode()
        return out + b"data: [DONE]\n\n"

    def _chunk_start(self) -> str:
        return (
            f'data: {{"id":"{self.rid}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{json.dumps(self.model)},"choices":'
        )

    def body(self, input_tokens: int, n: int, reason: str) -> bytes:
        """The whole answer of a non-streamed request."""
        text = self.tokens.text(n)
        if self.fmt == "openai":
            return json.dumps(
                {
                    "id": self.rid,
                    "object": "chat.completion",
                    "created": self.created,
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": reason,
                        }
                    ],
                    "usage": usage(input_tokens, n),
                }
            ).encode()
        answer = {"generated_text": text, "details": _details_dict(reason, n, input_tokens)}
        return json.dumps([answer] if self.fmt == "tgi" else answer).encode()

    def _text_json(self, n: int) -> bytes:
        return json.dumps(self.tokens.text(n)).encode()

    def _details(self, reason: str, n: int, input_tokens: int) -> bytes:
        return json.dumps(_details_dict(reason, n, input_tokens)).encode()


def usage(input_tokens: int, n: int) -> dict:
    return {"prompt_tokens": input_tokens, "completion_tokens": n, "total_tokens": input_tokens + n}


def _details_dict(reason: str, n: int, input_tokens: int) -> dict:
    return {"finish_reason": reason, "generated_tokens": n, "input_length": input_tokens}


def json_pieces(tokens: Tokens) -> tuple[bytes, ...]:
    return tuple(json.dumps(piece).encode() for piece in tokens.pieces)


def openai_error(status: int, message: str) -> bytes:
    """An error as OpenAI-compatible servers (vLLM) answer it; the openai SDK reads ``error.message``."""
    kind = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}.get(
        status, "InternalServerError"
    )
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": status}}).encode()
