"""The request metrics in Prometheus's text format (0.0.4), rendered by hand.

``locust_requests_total``, ``locust_request_failures_total``, ``locust_response_bytes_total``, the
``locust_request_duration_seconds`` histogram and, for response streams, the
``locust_time_to_first_byte_seconds`` histogram and, in open loop, the ``locust_schedule_lag_seconds``
histogram, per ``(request_type, name)``, from the
measurements' lifetime view (``smload.measure.store``: counts that only grow). Why by hand: 50 names x 460 buckets is 23,000
samples, and prometheus_client renders them in about 200 ms where this takes about 5 ms
(``bench/bench_exporter.py``); the small families (runner gauges, process, CloudWatch) still go
through prometheus_client.

Bounded cardinality: the first ``max_names`` names (in the order they were first seen) get their own
series; later ones are summed into ``name="(other)"``. ``error_type`` is the closed set of
``smload.errors`` (plus ``Other``), every value present from the start at 0, so that ``rate()``
and ``increase()`` see a failure type's first occurrences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smload import errors
from smload.measure.histogram import Histogram
from smload.measure.series import Series
from smload.record import GOODPUT, INPUT_TOKENS, ITL, LATENCY, OUTPUT_TOKENS, SCHEDULE_LAG, TPOT, TTFB, TTFT

from .buckets import LE_LABELS, cumulative_counts

Key = tuple[str, str]  # (request_type, name): the labels

OVERFLOW_NAME = "(other)"
ERROR_LABELS = (*errors.ERROR_TYPES, errors.OTHER)
DEFAULT_MAX_NAMES = 50

_HEADERS = {
    "locust_requests_total": (
        "counter",
        "Requests completed, successes and failures, from every worker since the master started",
    ),
    "locust_request_failures_total": (
        "counter",
        "Failed requests by error type (smload.errors: ModelError, ThrottlingException, Timeout, ...)",
    ),
    "locust_response_bytes_total": ("counter", "Response body bytes received"),
    "locust_request_duration_seconds": (
        "histogram",
        "Request latency to the last byte, measured by the workers, merged exactly on the master",
    ),
    "locust_time_to_first_byte_seconds": (
        "histogram",
        "Response streams: time to the first part, measured by the workers, merged exactly on the master",
    ),
    "locust_schedule_lag_seconds": (
        "histogram",
        "Open loop: actual send minus intended start of each arrival's request (the generator's own delay)",
    ),
    "locust_llm_time_to_first_token_seconds": (
        "histogram",
        "LLM requests: time to the first generated token, measured by the workers as tokens arrive",
    ),
    "locust_llm_inter_token_latency_seconds": (
        "histogram",
        "LLM requests: every gap between two generated tokens of a request",
    ),
    "locust_llm_time_per_output_token_seconds": (
        "histogram",
        "LLM requests: per request, (end-to-end latency - time to first token) / (output tokens - 1)",
    ),
    "locust_llm_input_tokens_total": ("counter", "LLM requests: prompt tokens (usage, else --tokenizer)"),
    "locust_llm_output_tokens_total": (
        "counter",
        "LLM requests: generated tokens (usage, else --tokenizer, else one per content chunk)",
    ),
    "locust_llm_goodput_requests_total": (
        "counter",
        "LLM requests that succeeded and met every --goodput objective (TTFT, TPOT, e2e) on their own",
    ),
}
# timing kind -> histogram family
HISTOGRAMS = {
    LATENCY: "locust_request_duration_seconds",
    TTFB: "locust_time_to_first_byte_seconds",
    TTFT: "locust_llm_time_to_first_token_seconds",
    ITL: "locust_llm_inter_token_latency_seconds",
    TPOT: "locust_llm_time_per_output_token_seconds",
    SCHEDULE_LAG: "locust_schedule_lag_seconds",
}
# counter -> counter family (present for a name once it has the counter)
COUNTERS = {
    INPUT_TOKENS: "locust_llm_input_tokens_total",
    OUTPUT_TOKENS: "locust_llm_output_tokens_total",
    GOODPUT: "locust_llm_goodput_requests_total",
}


def label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def error_label(error: str) -> str:
    """``ModelError(500)`` -> ``ModelError``; anything outside the closed set -> ``Other``."""
    base = errors.base_type(error)
    return base if base in ERROR_LABELS else errors.OTHER


def _header(family: str) -> str:
    kind, help_text = _HEADERS[family]
    return f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"


class RequestMetrics:
    """Renders the request families; keeps per-name label strings between scrapes."""

    def __init__(self, max_names: int = DEFAULT_MAX_NAMES):
        self.max_names = max_names
        self._tracked: set[Key] = set()  # names with their own series, for the life of the process
        self._labels: dict[Key, str] = {}
        self._bucket_prefixes: dict[tuple[str, Key], list[str]] = {}

    def _capped(self, lifetime: Mapping[Any, Series]) -> dict[Key, Series]:
        """Per (request type, name); names beyond the cap summed per request type into ``(other)``:
        counts still only grow."""
        out: dict[Key, Series] = {}
        overflow: dict[Key, Series] = {}
        for identity, series in lifetime.items():
            key = (identity.api, identity.name)
            if key in out:  # two identities under one name (a custom locustfile's): one series
                out[key] = out[key].copy().merge(series)
                continue
            if key not in self._tracked and len(self._tracked) < self.max_names:
                self._tracked.add(key)
            if key in self._tracked:
                out[key] = series
            else:
                other = (key[0], OVERFLOW_NAME)
                overflow.setdefault(other, Series()).merge(series)
        out.update(overflow)
        return out

    def _labels_of(self, key: Key) -> str:
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = f'request_type="{label_value(key[0])}",name="{label_value(key[1])}"'
        return labels

    def _prefixes(self, family: str, key: Key) -> list[str]:
        prefixes = self._bucket_prefixes.get((family, key))
        if prefixes is None:
            labels = self._labels_of(key)
            prefixes = [f'{family}_bucket{{{labels},le="{le}"}} ' for le in LE_LABELS]
            self._bucket_prefixes[(family, key)] = prefixes
        return prefixes

    def _histogram(self, family: str, key: Key, histogram: Histogram) -> list[str]:
        labels = self._labels_of(key)
        lines = [
            f"{prefix}{count}\n"
            for prefix, count in zip(self._prefixes(family, key), cumulative_counts(histogram), strict=True)
        ]
        lines.append(f"{family}_sum{{{labels}}} {histogram.sum / 1000.0!r}\n")
        lines.append(f"{family}_count{{{labels}}} {histogram.count}\n")
        return lines

    def render(self, lifetime: Mapping[Any, Series]) -> str:
        view = self._capped(lifetime)
        requests, failures, response_bytes = [], [], []
        histograms: dict[str, list[str]] = {family: [] for family in HISTOGRAMS.values()}
        counters: dict[str, list[str]] = {family: [] for family in COUNTERS.values()}
        for key, series in view.items():
            labels = self._labels_of(key)
            requests.append(f"locust_requests_total{{{labels}}} {series.requests}\n")
            by_type = dict.fromkeys(ERROR_LABELS, 0)
            for error, n in series.failures.items():
                by_type[error_label(error)] += n
            failures.extend(
                f'locust_request_failures_total{{{labels},error_type="{error_type}"}} {n}\n'
                for error_type, n in by_type.items()
            )
            response_bytes.append(f"locust_response_bytes_total{{{labels}}} {series.response_bytes}\n")
            for kind, family in HISTOGRAMS.items():
                histogram = series.timings.get(kind)
                if histogram is not None or kind == LATENCY:
                    histograms[family] += self._histogram(family, key, histogram or Histogram())
            if OUTPUT_TOKENS in series.counts:  # an LLM name: all three counters, from 0
                for counter, family in COUNTERS.items():
                    if counter != GOODPUT or GOODPUT in series.counts:
                        counters[family].append(f"{family}{{{labels}}} {series.counts.get(counter, 0)}\n")
        out = [
            _header("locust_requests_total"),
            *requests,
            _header("locust_request_failures_total"),
            *failures,
            _header("locust_response_bytes_total"),
            *response_bytes,
        ]
        for family, lines in (*histograms.items(), *counters.items()):
            if lines:
                out += [_header(family), *lines]
        return "".join(out)
