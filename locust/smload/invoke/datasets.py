"""Prompts for LLM endpoints, built into request bodies at start-up (checked, hashed once):

* **synthetic** (``--prompt-tokens``, ``--output-tokens``): prompts of a drawn number of tokens,
  made of words that are one token each (without ``--tokenizer``: four characters each, the usual
  rule of thumb and the emulator's default; with it: words that are single tokens of that
  vocabulary), and a ``max_tokens`` drawn per request. Seedable (``--dataset-seed``).
* **ShareGPT** (``--dataset FILE``, JSON or JSON Lines): each conversation's first human turn is the
  prompt; its ``max_tokens`` is ``--output-tokens`` if given, else the length of the reply that
  follows it (counted with ``--tokenizer``, else four characters a token). One turn per request:
  multi-turn conversations are not replayed.
* **request bodies** (``--payload``): sent as they are, in the container's own format.

A length distribution (``--prompt-tokens``, ``--output-tokens``) is ``N`` (fixed),
``normal:mean=M,sd=S``, ``lognormal:median=M,p99=P`` or ``uniform:min=A,max=B``; ``min=`` and
``max=`` clamp any of them. Import-light: no Locust.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from smload.usage import UsageError

from .tokens import TokenCounter

# Words of four characters with their space (" the"): one token each by the four-characters rule.
WORDS = (
    " the",
    " and",
    " for",
    " was",
    " you",
    " not",
    " are",
    " but",
    " his",
    " had",
    " her",
    " all",
    " can",
    " one",
    " out",
    " use",
    " how",
    " its",
    " who",
    " new",
    " now",
    " may",
    " way",
    " day",
    " get",
    " see",
    " any",
    " two",
    " man",
    " old",
    " end",
    " big",
    " ask",
    " own",
    " put",
    " too",
)
MAX_DATASET_BYTES = 512 * 1024 * 1024
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


@dataclass(frozen=True)
class Distribution:
    """A token count: ``kind`` fixed, normal, lognormal or uniform; ``a``, ``b`` its parameters."""

    text: str
    kind: str
    a: float
    b: float = 0.0
    low: int = 1
    high: int = 1_000_000

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        elif self.kind == "lognormal":
            sigma = math.log(self.b / self.a) / _Z99 if self.b > self.a else 0.0
            value = rng.lognormvariate(math.log(self.a), sigma)
        else:
            value = rng.uniform(self.a, self.b)
        return int(min(self.high, max(self.low, round(value))))


def distribution(text: str) -> Distribution:
    """Parse ``--prompt-tokens`` / ``--output-tokens``; ValueError says why not."""
    spec = str(text).strip()
    example = "e.g. 256, normal:mean=256,sd=32, lognormal:median=200,p99=800, uniform:min=10,max=100"
    kind, sep, rest = spec.partition(":")
    if not sep:
        try:
            n = int(spec)
        except ValueError:
            raise ValueError(f"{spec!r} is not a token count ({example})") from None
        if n < 1:
            raise ValueError(f"{spec!r}: a token count is at least 1")
        return Distribution(spec, "fixed", n, low=n, high=n)
    needed = {"normal": ("mean", "sd"), "lognormal": ("median", "p99"), "uniform": ("min", "max")}.get(kind)
    if needed is None:
        raise ValueError(f"{spec!r}: unknown distribution {kind!r} ({example})")
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{spec!r}: {part!r} is not key=number ({example})") from None
        if not eq or not math.isfinite(values[key.strip()]) or values[key.strip()] < 0:
            raise ValueError(f"{spec!r}: {part!r} is not key=number >= 0 ({example})")
    unknown = set(values) - {*needed, "min", "max"}
    missing = [k for k in needed if k not in values]
    if unknown or missing:
        raise ValueError(f"{spec!r}: {kind} takes {', '.join(needed)} (and min=, max=) ({example})")
    a, b = values[needed[0]], values[needed[1]]
    if kind == "lognormal" and (a <= 0 or b < a):
        raise ValueError(f"{spec!r}: median must be positive and p99 at least the median")
    if kind == "uniform" and b < a:
        raise ValueError(f"{spec!r}: max must be at least min")
    low = max(1, int(values.get("min", 1)))
    high = int(values.get("max", 1_000_000))
    if high < low:
        raise ValueError(f"{spec!r}: max must be at least min")
    return Distribution(spec, kind, a, b, low, high)


@dataclass(frozen=True)
class Prompt:
    text: str
    max_tokens: int | None  # None: the body names none (the server's default)
    source: str


def synthetic(
    prompt_tokens: Distribution,
    output_tokens: Distribution | None,
    count: int,
    seed: int | None,
    counter: TokenCounter | None,
) -> list[Prompt]:
    rng = random.Random(seed)
    words = counter.single_token_words(WORDS) if counter else WORDS
    if not words:
        raise UsageError(
            "--tokenizer",
            f"{counter.path if counter else ''}: none of the synthetic prompt words is a "
            "single token in it: synthetic prompts cannot have an exact length",
        )
    prompts = []
    for i in range(count):
        n = prompt_tokens.draw(rng)
        text = "".join(rng.choice(words) for _ in range(n))
        prompts.append(
            Prompt(text, output_tokens.draw(rng) if output_tokens else None, f"synthetic #{i + 1}")
        )
    return prompts


def sharegpt(
    spec: str, output_tokens: Distribution | None, seed: int | None, counter: TokenCounter | None
) -> list[Prompt]:
    """A ShareGPT file: a JSON list of ``{"conversations": [{"from": "human", "value": ...}, ...]}``, or
    one such object per line (JSON Lines)."""
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UsageError("--dataset", f"{spec!r} does not exist: give a ShareGPT JSON or JSON Lines file")
    if path.stat().st_size > MAX_DATASET_BYTES:
        raise UsageError("--dataset", f"{spec!r} is over {MAX_DATASET_BYTES:,} bytes: take a sample of it")
    data = path.read_bytes()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            rows = [(f"{spec}[{i}]", row) for i, row in enumerate(json.loads(data))]
        except ValueError as err:
            raise UsageError("--dataset", f"{spec}: invalid JSON ({err})") from None
    else:
        rows = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{spec}:{number}", json.loads(line)))
            except ValueError as err:
                raise UsageError(
                    "--dataset",
                    f"{spec}:{number}: invalid JSON ({err}): each line is one ShareGPT conversation",
                ) from None
    rng = random.Random(seed)
    prompts = []
    for source, row in rows:
        turns = row.get("conversations") if isinstance(row, dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise UsageError(
                "--dataset",
                f"{source}: not a ShareGPT conversation (an object with a "
                '"conversations" list of {"from", "value"} turns)',
            )
        for i, turn in enumerate(turns):
            if turn.get("from") in ("human", "user") and isinstance(turn.get("value"), str) and turn["value"]:
                reply = turns[i + 1].get("value") if i + 1 < len(turns) else None
                if output_tokens is not None:
                    max_tokens = output_tokens.draw(rng)
                elif isinstance(reply, str) and reply:
                    max_tokens = max(1, counter.count(reply) if counter else math.ceil(len(reply) / 4))
                else:
                    max_tokens = None
                prompts.append(Prompt(turn["value"], max_tokens, source))
                break
    if not prompts:
        raise UsageError("--dataset", f"{spec!r} has no conversation with a human turn")
    return prompts


def prompt_of(body: bytes) -> str | None:
    """The prompt's text in a request body (chat ``messages`` contents, or ``inputs``), as servers
    count it; None when the body is not one of those."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("inputs"), str):
        return doc["inputs"]
    messages = doc.get("messages")
    if isinstance(messages, list):
        parts = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts += [
                    p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                ]
        return "".join(parts)
    return None
