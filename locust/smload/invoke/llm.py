"""LLM endpoints: the options (declared once, part of the endpoint group), the request bodies of
each container format, ``--goodput`` and what one answer tells the measurements.

An LLM test is one where any of these options is given; without them the classic request path is
untouched. ``--api`` picks the API: ``invoke`` (InvokeEndpoint, one JSON answer with usage),
``stream`` (InvokeEndpointWithResponseStream) or ``openai`` (the OpenAI-compatible route,
``ChatCompletions``, bearer tokens minted from the botocore credentials: :mod:`.bearer`).

Bodies come from a dataset (:mod:`.datasets`: synthetic lengths, ShareGPT) in the container's
format (``--request-format openai|tgi|lmi``, or ``--request-template FILE``: a JSON body in which
the strings ``"{{prompt}}"`` and ``"{{max_tokens}}"`` are replaced), or from ``--payload`` as they
are. Import-light: no Locust, no botocore.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from smload import flags
from smload.record import (
    COUNTED_BY_CHUNKS,
    COUNTED_BY_TOKENIZER,
    COUNTED_BY_USAGE,
    GOODPUT,
    INPUT_TOKENS,
    ITL,
    OUTPUT_TOKENS,
    TPOT,
    TTFT,
)
from smload.usage import UsageError

from . import datasets
from .payloads import Payload
from .token_stream import TokenStream
from .tokens import TokenCounter

INVOKE_API, STREAM_API, OPENAI_API = "invoke", "stream", "openai"
APIS = (INVOKE_API, STREAM_API, OPENAI_API)
FORMATS = ("openai", "tgi", "lmi")
DEFAULT_DATASET_SIZE = 1000
_PROMPT, _MAX_TOKENS = '"{{prompt}}"', '"{{max_tokens}}"'

OPTIONS = (
    flags.Option(
        "--api",
        "LLM endpoints: invoke (InvokeEndpoint), stream (InvokeEndpointWithResponseStream) or openai "
        "(the OpenAI-compatible route, ChatCompletions, bearer tokens from the AWS credentials); any LLM "
        "option turns on token metrics (TTFT, ITL, TPOT, tokens/s)",
        choices=APIS,
    ),
    flags.Option(
        "--request-format",
        "the container's request body for --dataset/--prompt-tokens prompts: openai "
        "(messages), tgi or lmi (inputs, parameters.max_new_tokens); default openai",
        choices=FORMATS,
        metavar="FORMAT",
    ),
    flags.Option(
        "--request-template",
        'a JSON request body in which the strings "{{prompt}}" and '
        '"{{max_tokens}}" are replaced per request (instead of --request-format)',
        metavar="FILE",
    ),
    flags.Option(
        "--dataset",
        "LLM prompts from a ShareGPT file (JSON, or JSON Lines: one conversation a line); its "
        "first human turn is the prompt, the reply's length its max_tokens",
        metavar="FILE",
    ),
    flags.Option(
        "--prompt-tokens",
        "synthetic prompts of this many tokens: N, normal:mean=M,sd=S, "
        "lognormal:median=M,p99=P or uniform:min=A,max=B (min=/max= clamp)",
        datasets.distribution,
        metavar="DIST",
    ),
    flags.Option(
        "--output-tokens",
        "max_tokens per request, the same forms as --prompt-tokens (default: the "
        "dataset's reply length, else the server's default)",
        datasets.distribution,
        metavar="DIST",
    ),
    flags.Option(
        "--dataset-size",
        "how many synthetic prompts to draw",
        flags.number(1, 1_000_000, integer=True),
        default=DEFAULT_DATASET_SIZE,
        metavar="N",
    ),
    flags.Option(
        "--dataset-seed",
        "seed for synthetic prompts and drawn lengths (default: a different draw each run)",
        flags.number(integer=True),
        metavar="N",
    ),
    flags.Option(
        "--tokenizer",
        "a local tokenizer.json (Hugging Face tokenizers) to count tokens when the answer "
        "states no usage; nothing is downloaded",
        metavar="FILE",
    ),
    flags.Option(
        "--goodput",
        "the per-request objectives a request must all meet to count as goodput, e.g. "
        '"ttft<500ms,tpot<50ms" (ttft, tpot, e2e; < or <=; ms or s)',
        metavar="EXPR",
    ),
    flags.Option(
        "--model", 'the "model" of OpenAI request bodies (default: the endpoint\'s name)', metavar="NAME"
    ),
)
OPTION_DESTS = tuple(option.dest for option in OPTIONS)


@dataclass(frozen=True)
class Objective:
    metric: str  # "ttft", "tpot", "e2e"
    op: str
    ms: float

    def holds(self, value: float) -> bool:
        return value < self.ms if self.op == "<" else value <= self.ms


@dataclass(frozen=True)
class Goodput:
    text: str
    objectives: tuple[Objective, ...]

    def good(self, ttft_ms: float | None, tpot_ms: float | None, e2e_ms: float) -> bool:
        """Every objective met; a request of one token has no TPOT, and meets a TPOT objective."""
        for o in self.objectives:
            value = ttft_ms if o.metric == "ttft" else tpot_ms if o.metric == "tpot" else e2e_ms
            if value is None:
                if o.metric == "tpot":
                    continue
                return False
            if not o.holds(value):
                return False
        return True


_OBJECTIVE = re.compile(r"\s*(ttft|tpot|e2e)\s*(<=|<)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s)\s*")


def goodput(text: str) -> Goodput:
    """Parse ``--goodput``; ValueError says why not."""
    objectives = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", str(text)))):
        match = _OBJECTIVE.fullmatch(part)
        if not match:
            raise ValueError(f"{part!r} is not an objective like ttft<500ms, tpot<50ms or e2e<=10s")
        metric, op, number, unit = match.groups()
        objectives.append(Objective(metric, op, float(number) * (1000.0 if unit == "s" else 1.0)))
    if not objectives:
        raise ValueError(f'{text!r} has no objective: e.g. "ttft<500ms,tpot<50ms"')
    return Goodput(str(text).strip(), tuple(objectives))


@dataclass(frozen=True)
class LLMSettings:
    api: str
    request_format: str | None  # None: bodies from --payload, or a template
    counter: TokenCounter | None
    goodput: Goodput | None
    dataset: str  # what the prompts are, for the summary

    @property
    def tokenizer(self) -> str | None:
        return self.counter.path if self.counter else None


def given(values: flags.Values) -> bool:
    """Whether this is an LLM test: any LLM option given."""
    return any(values.get(dest) is not None for dest in OPTION_DESTS if dest not in ("dataset_size",))


def build(values: flags.Values, endpoint_name: str, stream: bool) -> tuple[LLMSettings, list[Payload] | None]:
    """The LLM settings and, for a dataset, its bodies (None: the caller reads --payload)."""
    api = values["api"] or (STREAM_API if stream else INVOKE_API)
    if stream and api != STREAM_API:
        raise UsageError("--stream", f"is --api stream: it cannot be combined with --api {api}")
    if values["tokenizer"]:
        counter = TokenCounter(values["tokenizer"])
    else:
        counter = None
    good = None
    if values["goodput"]:
        try:
            good = goodput(values["goodput"])
        except ValueError as err:
            raise UsageError("--goodput", str(err)) from None
    if values["request_template"] and values["request_format"]:
        raise UsageError(
            "--request-template", "cannot be combined with --request-format: the template is the format"
        )
    if values["dataset"] and values["prompt_tokens"]:
        raise UsageError("--prompt-tokens", "cannot be combined with --dataset: the dataset has its prompts")
    uses_dataset = bool(values["dataset"] or values["prompt_tokens"])
    if uses_dataset and values["payload"]:
        raise UsageError(
            "--payload", "cannot be combined with --dataset or --prompt-tokens: choose one source of prompts"
        )
    if not uses_dataset:
        settings = LLMSettings(api, None, counter, good, "--payload bodies")
        return settings, None
    fmt = "openai" if api == OPENAI_API else (values["request_format"] or "openai")
    if api == OPENAI_API and values["request_format"] not in (None, "openai"):
        raise UsageError("--request-format", "--api openai sends OpenAI bodies: leave --request-format out")
    template = _template(values["request_template"]) if values["request_template"] else None
    if values["dataset"]:
        prompts = datasets.sharegpt(
            values["dataset"], values["output_tokens"], values["dataset_seed"], counter
        )
        what = f"ShareGPT {values['dataset']} ({len(prompts)} prompts)"
    else:
        prompts = datasets.synthetic(
            values["prompt_tokens"],
            values["output_tokens"],
            values["dataset_size"],
            values["dataset_seed"],
            counter,
        )
        what = (
            f"synthetic: {len(prompts)} prompts of {values['prompt_tokens'].text} tokens, max_tokens "
            f"{values['output_tokens'].text if values['output_tokens'] else 'the server default'}"
        )
    streamed = api != INVOKE_API
    model = values["model"] or endpoint_name
    bodies = []
    for prompt in prompts:
        body = template(prompt) if template else request_body(fmt, prompt, streamed, model)
        bodies.append(
            Payload.of(
                body, "application/json", prompt.source, counter.count(prompt.text) if counter else None
            )
        )
    return LLMSettings(api, None if template else fmt, counter, good, what), bodies


def count_payload_prompts(payloads: list[Payload], counter: TokenCounter | None) -> list[Payload]:
    """``--payload`` bodies of an LLM test, with their prompts' token counts when a tokenizer is given."""
    if counter is None:
        return payloads
    out = []
    for p in payloads:
        text = datasets.prompt_of(p.body)
        out.append(
            Payload(
                p.body, p.content_type, p.sha256, p.source, counter.count(text) if text is not None else None
            )
        )
    return out


def request_body(fmt: str, prompt: datasets.Prompt, stream: bool, model: str) -> bytes:
    if fmt == "openai":
        doc: dict = {"model": model, "messages": [{"role": "user", "content": prompt.text}]}
        if prompt.max_tokens is not None:
            doc["max_tokens"] = prompt.max_tokens
        if stream:
            doc["stream"] = True
            doc["stream_options"] = {"include_usage": True}
        return json.dumps(doc).encode()
    parameters: dict = {"details": True} if fmt == "tgi" else {}
    if prompt.max_tokens is not None:
        parameters["max_new_tokens"] = prompt.max_tokens
    doc = {"inputs": prompt.text, "parameters": parameters}
    if stream:
        doc["stream"] = True
    return json.dumps(doc).encode()


def _template(spec: str):
    path = Path(spec).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError("--request-template", f"cannot read {spec!r}: {err.strerror or err}") from None
    if _PROMPT not in text:
        raise UsageError("--request-template", f'{spec!r} has no "{{{{prompt}}}}" string to replace')
    try:
        json.loads(text.replace(_PROMPT, '""').replace(_MAX_TOKENS, "1"))
    except ValueError as err:
        raise UsageError("--request-template", f"{spec!r} is not a JSON body: {err}") from None

    def render(prompt: datasets.Prompt) -> bytes:
        body = text.replace(_PROMPT, json.dumps(prompt.text))
        return body.replace(_MAX_TOKENS, str(prompt.max_tokens or 256)).encode()

    return render


# --- one answer -> the record's timings and counts -----------------------------------------------


def measured(
    llm: LLMSettings, tokens: TokenStream, payload: Payload, start: float, e2e_ms: float, ok: bool
) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, int], ...]]:
    """TTFT, every inter-token gap, TPOT = (e2e - TTFT) / (output tokens - 1); input and output tokens
    from the answer's usage, else the tokenizer, else (output only) one per content chunk; goodput."""
    timings: list[tuple[str, float]] = []
    ttft_ms = None
    if tokens.first is not None:
        ttft_ms = (tokens.first - start) * 1000.0
        timings.append((TTFT, ttft_ms))
        timings += [(ITL, gap * 1000.0) for gap in tokens.gaps]
    output = tokens.output_tokens
    input_tokens = tokens.input_tokens
    if output is not None:
        source = COUNTED_BY_USAGE
    elif llm.counter is not None and tokens.texts:
        output, source = llm.counter.count("".join(tokens.texts)), COUNTED_BY_TOKENIZER
    else:
        output, source = tokens.chunks, COUNTED_BY_CHUNKS
    if input_tokens is None:
        input_tokens = payload.prompt_tokens
    counts: list[tuple[str, int]] = [(OUTPUT_TOKENS, output), (source, 1)]
    if input_tokens is not None:
        counts.append((INPUT_TOKENS, input_tokens))
    tpot_ms = None
    if ok and ttft_ms is not None and output > 1:
        tpot_ms = (e2e_ms - ttft_ms) / (output - 1)
        timings.append((TPOT, tpot_ms))
    if llm.goodput is not None:
        # a whole answer (--api invoke) reaches its user with its first token: its TTFT is its e2e
        first = e2e_ms if ttft_ms is None and llm.api == INVOKE_API else ttft_ms
        counts.append((GOODPUT, int(ok and llm.goodput.good(first, tpot_ms, e2e_ms))))
    return tuple(timings), tuple(counts)
