"""The configuration of an LLM variant or inference component (its ``llm`` block), and the
closed-form capacity of the batching model it describes (docs/emulator-llm.md derives it).

    llm:
      max_batch: 8                 # sequences decoding together on one instance (copy)
      kv_cache_tokens: 65536       # KV-cache budget of one instance, in tokens
      prefill_ms_per_token: 0.02   # prefill time per prompt token, added to the step that admits it
      decode: {base_ms: 2, per_seq_ms: 0.5}   # one decode step: base_ms + per_seq_ms x batch
      output_tokens: max_tokens    # or a number, or {median: 200, p99: 800} (lognormal)
      eos_probability: 0.0         # chance per token of stopping at an end token
      default_max_tokens: 256      # a request that names no max_tokens
      format: openai               # what InvokeEndpoint(WithResponseStream) speak: openai | tgi | lmi
      chars_per_token: 4           # the prompt-token rule without a tokenizer
      tokenizer: tokenizer.json    # or count prompt tokens with this Hugging Face tokenizer
      model: my-model              # the "model" field of answers (default: the variant's name)

The same keys exist as ``--variant`` flag keys (``max_batch=8,decode_ms=2,decode_per_seq_ms=0.5,...``);
any of them makes the variant an LLM variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tokens import TokenizerError, Tokens

FORMATS = ("openai", "tgi", "lmi")
MAX_CHARS_PER_TOKEN = 16
# Upper bounds of the values (a typo of a few digits must be an error, not a server that never answers)
MAX_BATCH = 100_000
MAX_KV = 2**31 - 1
MAX_TOKENS = 10_000_000
MAX_STEP_MS = 60_000.0
MAX_TEXT = 4096


@dataclass(frozen=True)
class OutputLength:
    """How many tokens a request generates before its max_tokens: all of them (``max_tokens``), a
    fixed number, or a lognormal draw through (median, p99)."""

    mode: str = "max_tokens"  # max_tokens | fixed | lognormal
    fixed: int = 0
    median: float = 0.0
    p99: float = 0.0

    def to_json(self) -> Any:
        if self.mode == "max_tokens":
            return "max_tokens"
        if self.mode == "fixed":
            return self.fixed
        return {"median": self.median, "p99": self.p99}


@dataclass
class Decode:
    base_ms: float = 2.0
    per_seq_ms: float = 0.5


@dataclass
class LLM:
    max_batch: int = 8
    kv_cache_tokens: int = 65536
    prefill_ms_per_token: float = 0.0
    decode: Decode = field(default_factory=Decode)
    output_tokens: OutputLength = field(default_factory=OutputLength)
    eos_probability: float = 0.0
    default_max_tokens: int = 256
    format: str = "openai"
    chars_per_token: int = 4
    tokenizer: str | None = None
    model: str | None = None

    def step_ms(self, batch: float, prefill_tokens: float = 0.0) -> float:
        """One step of an instance: the decode of ``batch`` sequences plus the prefill it admits."""
        return (
            self.decode.base_ms + self.decode.per_seq_ms * batch + self.prefill_ms_per_token * prefill_tokens
        )

    def to_json(self) -> dict:
        return {
            "max_batch": self.max_batch,
            "kv_cache_tokens": self.kv_cache_tokens,
            "prefill_ms_per_token": self.prefill_ms_per_token,
            "decode": {"base_ms": self.decode.base_ms, "per_seq_ms": self.decode.per_seq_ms},
            "output_tokens": self.output_tokens.to_json(),
            "eos_probability": self.eos_probability,
            "default_max_tokens": self.default_max_tokens,
            "format": self.format,
            "chars_per_token": self.chars_per_token,
            "tokenizer": self.tokenizer,
            "model": self.model,
        }


# ---------------------------------------------------------------------------------------------
# The closed form (docs/emulator-llm.md, "Capacity"). Per instance; multiply rates by instances.


def max_concurrency(llm: LLM, prompt_tokens: int, max_tokens: int) -> int:
    """Sequences one instance decodes together: the batch limit, or fewer when the KV budget holds
    fewer reservations of prompt + max_tokens."""
    return min(llm.max_batch, llm.kv_cache_tokens // max(1, prompt_tokens + max_tokens))


def step_ms_steady(llm: LLM, batch: float, prompt_tokens: int, output_tokens: int) -> float:
    """The mean step time with ``batch`` sequences decoding, each request's prefill spread over its
    ``output_tokens`` steps (every sequence joins once per ``output_tokens`` steps)."""
    return llm.step_ms(batch, batch * prompt_tokens / max(1, output_tokens))


def tokens_per_s(llm: LLM, batch: float, prompt_tokens: int, output_tokens: int) -> float:
    """Output tokens per second of one instance decoding ``batch`` sequences: one token each per step."""
    return 1000.0 * batch / step_ms_steady(llm, batch, prompt_tokens, output_tokens)


def concurrency_at_tpot(
    llm: LLM, tpot_ms: float, prompt_tokens: int, output_tokens: int, max_tokens: int
) -> int:
    """The largest batch one instance sustains with a time per output token of at most ``tpot_ms``
    (0 when even a single sequence is slower)."""
    per_seq = llm.decode.per_seq_ms + llm.prefill_ms_per_token * prompt_tokens / max(1, output_tokens)
    if tpot_ms < llm.decode.base_ms + per_seq:
        return 0
    limit = max_concurrency(llm, prompt_tokens, max_tokens)
    if per_seq == 0:
        return limit
    return min(limit, math.floor((tpot_ms - llm.decode.base_ms) / per_seq + 1e-9))


def closed_loop_batch(callers: float, output_tokens: int) -> float:
    """The mean batch of ``callers`` closed-loop callers without think time: each request decodes for
    ``output_tokens`` steps, then its caller's next request waits out the step under way."""
    return callers * output_tokens / (output_tokens + 1)


# ---------------------------------------------------------------------------------------------
# Reading the block (file) and the flag keys


LLM_KEYS = (
    "max_batch",
    "kv_cache_tokens",
    "prefill_ms_per_token",
    "decode",
    "output_tokens",
    "eos_probability",
    "default_max_tokens",
    "format",
    "chars_per_token",
    "tokenizer",
    "model",
)

# --variant key -> its path inside the variant document (all under "llm")
FLAG_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "max_batch": (("llm", "max_batch"), "int"),
    "kv_cache_tokens": (("llm", "kv_cache_tokens"), "int"),
    "prefill_ms_per_token": (("llm", "prefill_ms_per_token"), "num"),
    "decode_ms": (("llm", "decode", "base_ms"), "num"),
    "decode_per_seq_ms": (("llm", "decode", "per_seq_ms"), "num"),
    "output_tokens": (("llm", "output_tokens"), "int"),
    "eos_probability": (("llm", "eos_probability"), "num"),
    "max_tokens": (("llm", "default_max_tokens"), "int"),
    "format": (("llm", "format"), "str"),
    "chars_per_token": (("llm", "chars_per_token"), "int"),
    "tokenizer": (("llm", "tokenizer"), "str"),
    "model": (("llm", "model"), "str"),
}


def parse(doc: Any, path: str, reader, base_dir: Path | None = None) -> LLM:
    """The ``llm`` block at ``path``; ``reader`` is config's _Reader (its errors name the field)."""
    if doc is None or doc is True:
        doc = {}
    doc = reader.mapping(doc, path, LLM_KEYS)
    llm = LLM()
    if "max_batch" in doc:
        llm.max_batch = _bounded(reader, doc["max_batch"], f"{path}.max_batch", 1, MAX_BATCH)
    if "kv_cache_tokens" in doc:
        llm.kv_cache_tokens = _bounded(reader, doc["kv_cache_tokens"], f"{path}.kv_cache_tokens", 2, MAX_KV)
    if "prefill_ms_per_token" in doc:
        llm.prefill_ms_per_token = reader.number(
            doc["prefill_ms_per_token"], f"{path}.prefill_ms_per_token", maximum=MAX_STEP_MS
        )
    if "decode" in doc:
        d = reader.mapping(doc["decode"], f"{path}.decode", ("base_ms", "per_seq_ms"))
        llm.decode = Decode(
            reader.number(d.get("base_ms", 2.0), f"{path}.decode.base_ms", maximum=MAX_STEP_MS),
            reader.number(d.get("per_seq_ms", 0.5), f"{path}.decode.per_seq_ms", maximum=MAX_STEP_MS),
        )
    if llm.decode.base_ms + llm.decode.per_seq_ms <= 0:
        raise reader.fail(
            f"{path}.decode.base_ms", "base_ms and per_seq_ms cannot both be 0 (a step takes time)"
        )
    if "output_tokens" in doc:
        llm.output_tokens = _output_length(doc["output_tokens"], f"{path}.output_tokens", reader)
    if "eos_probability" in doc:
        llm.eos_probability = reader.number(doc["eos_probability"], f"{path}.eos_probability", maximum=1.0)
    if "default_max_tokens" in doc:
        llm.default_max_tokens = _bounded(
            reader, doc["default_max_tokens"], f"{path}.default_max_tokens", 1, MAX_TOKENS
        )
    if "format" in doc:
        if doc["format"] not in FORMATS:
            raise reader.fail(f"{path}.format", f"must be one of {', '.join(FORMATS)}")
        llm.format = doc["format"]
    if "chars_per_token" in doc:
        llm.chars_per_token = reader.integer(doc["chars_per_token"], f"{path}.chars_per_token", 1)
        if llm.chars_per_token > MAX_CHARS_PER_TOKEN:
            raise reader.fail(
                f"{path}.chars_per_token", f"must be an integer from 1 to {MAX_CHARS_PER_TOKEN}"
            )
    if doc.get("tokenizer") is not None:
        if not isinstance(doc["tokenizer"], str) or not 0 < len(doc["tokenizer"]) <= MAX_TEXT:
            raise reader.fail(f"{path}.tokenizer", "must be the path of a tokenizer.json file")
        tokenizer = Path(doc["tokenizer"])
        if not tokenizer.is_absolute() and base_dir is not None:
            tokenizer = base_dir / tokenizer
        if not tokenizer.is_file():
            raise reader.fail(f"{path}.tokenizer", f"no such file: {tokenizer}")
        try:  # load it now: a broken tokenizer is a usage error, not a server that fails later
            Tokens(llm.chars_per_token, str(tokenizer))
        except TokenizerError as exc:
            raise reader.fail(f"{path}.tokenizer", str(exc)) from None
        llm.tokenizer = str(tokenizer)
    if doc.get("model") is not None:
        if (
            not isinstance(doc["model"], str)
            or not 0 < len(doc["model"]) <= MAX_TEXT
            or not doc["model"].isprintable()
        ):
            raise reader.fail(f"{path}.model", f"must be a printable string of 1 to {MAX_TEXT} characters")
        llm.model = doc["model"]
    return llm


def _bounded(reader, value: Any, path: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise reader.fail(path, f"must be an integer >= {minimum} and <= {maximum}")
    return value


def _output_length(value: Any, path: str, reader) -> OutputLength:
    if value == "max_tokens":
        return OutputLength()
    if isinstance(value, dict):
        value = reader.mapping(value, path, ("median", "p99"))
        median = reader.number(value.get("median"), f"{path}.median", minimum=1.0, maximum=MAX_TOKENS)
        p99 = reader.number(value.get("p99", median), f"{path}.p99", minimum=median, maximum=MAX_TOKENS)
        return OutputLength("lognormal", median=median, p99=p99)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TOKENS:
        return OutputLength("fixed", fixed=value)
    raise reader.fail(path, "must be max_tokens, a number of tokens >= 1, or {median, p99}")
