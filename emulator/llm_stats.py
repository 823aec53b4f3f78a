"""Ground truth of an LLM variant or inference component: what it sent and when, as the emulator
wrote it (wall clock, the whole request received -> the bytes handed to the socket).

- ``ttft_ms``: receipt -> the first token written (for a non-streamed answer: generated).
- ``itl_ms``: every gap between two tokens of one request (one entry per token after the first).
- ``tpot_ms``: per request, (last token - first token) / (tokens - 1).
- ``e2e_ms``: receipt -> the last token written.
- ``queue_wait_ms``: receipt -> admitted into a batch (the start of the step that prefills it).
- ``input_tokens`` / ``output_tokens``: exact sums, over requests that got a first token; output
  tokens are those written to clients (a request whose client went away counts what it was sent).
- ``batch`` and ``kv_cache``: occupancy over busy time (an instance between its first and last step).
- ``journal``: the last ``JOURNAL_MAX`` completed requests one by one, ``(ttft_ms, tpot_ms, e2e_ms,
  input_tokens, output_tokens)`` (``tpot_ms`` None for one token): per-request truth, for what
  percentiles cannot tell (the share of requests that met a TTFT *and* a TPOT objective, goodput).
  Served by ``GET /_emulator/requests``.

Served in ``/_emulator/stats`` (``llm`` block of the variant) and as ``sagemaker_emulator_llm_*``
families on ``/metrics``.
"""

from __future__ import annotations

from collections import deque

from smload.measure.histogram import Histogram, bucket_index

from .llm_model import Engine
from .stats import summary

# Prometheus buckets (seconds) for per-token times; request-level times use the classic buckets.
TOKEN_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.004,
    0.006,
    0.008,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
)
JOURNAL_MAX = 100_000  # completed requests kept one by one (about 6 MB); the oldest go first
JOURNAL_FIELDS = ("ttft_ms", "tpot_ms", "e2e_ms", "input_tokens", "output_tokens")
REQUEST_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def record_n(h: Histogram, ms: float, n: int) -> None:
    """``n`` equal values at once (a step's gap for every sequence in it): one log(), not n."""
    index = bucket_index(ms)
    counts = h.counts
    counts[index] = counts.get(index, 0) + n
    h.count += n
    h.sum += ms * n
    if ms < h.min:
        h.min = ms
    if ms > h.max:
        h.max = ms


class LLMStats:
    __slots__ = (
        "engine",
        "ttft",
        "itl",
        "tpot",
        "e2e",
        "queue_wait",
        "input_tokens",
        "output_tokens",
        "aborted",
        "journal",
    )

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reset()

    def reset(self) -> None:
        self.ttft = Histogram()
        self.itl = Histogram()
        self.tpot = Histogram()
        self.e2e = Histogram()
        self.queue_wait = Histogram()
        self.input_tokens = 0
        self.output_tokens = 0
        self.aborted = 0  # requests whose client closed the connection before their last token
        self.journal: deque[tuple] = deque(maxlen=JOURNAL_MAX)
        self.engine.stats.reset()

    def journal_json(self) -> dict:
        """The per-request truth: one list per field, in completion order (the oldest dropped past
        ``JOURNAL_MAX``)."""
        columns = list(zip(*self.journal, strict=True)) if self.journal else [()] * len(JOURNAL_FIELDS)
        return {
            "count": len(self.journal),
            **{name: list(col) for name, col in zip(JOURNAL_FIELDS, columns, strict=True)},
        }

    def to_json(self) -> dict:
        engine = self.engine
        es = engine.stats
        instances = len(engine.instances)
        busy = es.busy_s
        return {
            "ttft_ms": summary(self.ttft),
            "itl_ms": summary(self.itl),
            "tpot_ms": summary(self.tpot),
            "e2e_ms": summary(self.e2e),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "queue_wait_ms": summary(self.queue_wait),
            "aborted": self.aborted,
            "batch": {
                "mean": round(es.batch_s / busy, 3) if busy else 0.0,
                "max": es.batch_max,
                "now": engine.batch_now(),
                "limit": engine.max_batch,
                "instances": instances,
            },
            "kv_cache": {
                "budget_tokens_per_instance": engine.kv_budget,
                "utilisation_mean": round(es.kv_s / busy / engine.kv_budget, 4) if busy else 0.0,
                "utilisation_max": round(es.kv_max / engine.kv_budget, 4),
                "reserved_now": engine.kv_now(),
            },
            "busy_s": round(busy, 3),
            "steps": es.steps,
            "queued_now": engine.waiting,
        }


def prometheus(lines: list[str], rows: list[tuple[str, object]]) -> None:
    """Append the LLM families for ``rows`` (label text, VariantStats) whose ``llm`` is set."""
    rows = [(labels, vs.llm) for labels, vs in rows if getattr(vs, "llm", None) is not None]
    if not rows:
        return

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def histogram(name: str, help_text: str, attr: str, bounds_s: tuple[float, ...]) -> None:
        family(name, "histogram", help_text)
        bounds_ms = [b * 1000.0 for b in bounds_s]
        for labels, llm in rows:
            h: Histogram = getattr(llm, attr)
            for bound, n in zip(bounds_s, h.cumulative(bounds_ms), strict=True):
                lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {n}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {h.count}')
            lines.append(f"{name}_sum{{{labels}}} {h.sum / 1000.0!r}")
            lines.append(f"{name}_count{{{labels}}} {h.count}")

    histogram(
        "sagemaker_emulator_llm_time_to_first_token_seconds",
        "Receipt of a request to its first token written.",
        "ttft",
        REQUEST_BUCKETS_S,
    )
    histogram(
        "sagemaker_emulator_llm_inter_token_latency_seconds",
        "Gap between two tokens of one request.",
        "itl",
        TOKEN_BUCKETS_S,
    )
    histogram(
        "sagemaker_emulator_llm_time_per_output_token_seconds",
        "Per request: (last token - first token) / (tokens - 1).",
        "tpot",
        TOKEN_BUCKETS_S,
    )
    histogram(
        "sagemaker_emulator_llm_e2e_request_latency_seconds",
        "Receipt of a request to its last token written.",
        "e2e",
        REQUEST_BUCKETS_S,
    )
    histogram(
        "sagemaker_emulator_llm_queue_wait_seconds",
        "Receipt of a request to its admission into a batch.",
        "queue_wait",
        REQUEST_BUCKETS_S,
    )
    family(
        "sagemaker_emulator_llm_input_tokens_total",
        "counter",
        "Prompt tokens of requests that got a first token.",
    )
    for labels, llm in rows:
        lines.append(f"sagemaker_emulator_llm_input_tokens_total{{{labels}}} {llm.input_tokens}")
    family("sagemaker_emulator_llm_output_tokens_total", "counter", "Generated tokens written to clients.")
    for labels, llm in rows:
        lines.append(f"sagemaker_emulator_llm_output_tokens_total{{{labels}}} {llm.output_tokens}")
    family(
        "sagemaker_emulator_llm_busy_seconds_total",
        "counter",
        "Time instances spent running steps (summed over instances).",
    )
    for labels, llm in rows:
        lines.append(f"sagemaker_emulator_llm_busy_seconds_total{{{labels}}} {llm.engine.stats.busy_s!r}")
    family(
        "sagemaker_emulator_llm_batch_sequence_seconds_total",
        "counter",
        "Integral of the batch size over busy time: its rate over busy_seconds' rate is the mean batch.",
    )
    for labels, llm in rows:
        lines.append(
            f"sagemaker_emulator_llm_batch_sequence_seconds_total{{{labels}}} {llm.engine.stats.batch_s!r}"
        )
    family(
        "sagemaker_emulator_llm_kv_cache_token_seconds_total",
        "counter",
        "Integral of the KV-cache tokens reserved over busy time.",
    )
    for labels, llm in rows:
        lines.append(
            f"sagemaker_emulator_llm_kv_cache_token_seconds_total{{{labels}}} {llm.engine.stats.kv_s!r}"
        )
    family("sagemaker_emulator_llm_batch_size", "gauge", "Sequences decoding now (all instances).")
    for labels, llm in rows:
        lines.append(f"sagemaker_emulator_llm_batch_size{{{labels}}} {llm.engine.batch_now()}")
    family(
        "sagemaker_emulator_llm_kv_cache_usage_ratio",
        "gauge",
        "KV-cache tokens reserved now over the budget of all instances.",
    )
    for labels, llm in rows:
        engine = llm.engine
        lines.append(
            f"sagemaker_emulator_llm_kv_cache_usage_ratio{{{labels}}} "
            f"{engine.kv_now() / (engine.kv_budget * len(engine.instances))!r}"
        )
