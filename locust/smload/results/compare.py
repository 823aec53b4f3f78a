"""A/B comparison: two samples (two production variants of one run, or one request name in two runs)
compared metric by metric, each difference with its confidence interval and a verdict in words.
The rows are report.json's ``comparison`` block and what ``smload compare`` prints and gates on
(:mod:`.gates`).

Generic over the kinds of timing a sample holds (the headline latency, time to the first byte of a
stream; time to first token and per output token for LLM runs): every kind both samples have is
compared at the same statistics. The statistics themselves are :mod:`.statistics`.

Pure code: no Locust, no files (``smload.compare_command`` reads reports; ``smload.run.ab`` gathers
a run's samples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from smload.measure.histogram import Histogram
from smload.record import LATENCY

from . import statistics as st

CONFIDENCE = 0.95
STATISTICS = ("p50", "p95", "p99", "mean")  # compared for every kind of timing
ERROR_RATE = "error_rate"
# The difference a sample size is computed for when no gate or comparison check names one: 5% of
# the baseline's latency, 0.1 percentage points of error rate (the example gates).
DEFAULT_RELATIVE_EFFECT = 0.05
DEFAULT_RATE_EFFECT = 0.001
KIND_WORDS = {
    LATENCY: "",
    "ttfb": "time to first byte",
    "ttft": "time to first token",
    "tpot": "time per output token",
    "itl": "inter-token latency",
    "per_part": "time per part",
}


@dataclass
class Sample:
    """One side of a comparison: what was measured for one request name."""

    label: str  # the request name (``ab-test/variant-a``)
    requests: int
    failures: int
    timings: dict[str, Histogram] = field(default_factory=dict)  # kind -> ms
    target: str | None = None  # the production variant (or inference component), when known


def metric_name(kind: str, statistic: str) -> str:
    """``p95_ms`` for the headline latency, ``ttft_p95_ms`` for another kind, ``error_rate``."""
    if statistic == ERROR_RATE:
        return ERROR_RATE
    return f"{statistic}_ms" if kind == LATENCY else f"{kind}_{statistic}_ms"


def _what(kind: str, statistic: str) -> str:
    """How a metric reads in a sentence: ``p95``, ``the mean``, ``the error rate``, ``time to first token p95``."""
    if statistic == ERROR_RATE:
        return "the error rate"
    label = KIND_WORDS.get(kind, kind)
    if label:
        return f"{label} {statistic}"
    return "the mean" if statistic == "mean" else statistic


def _estimate(h: Histogram, statistic: str, confidence: float) -> st.Estimate:
    if statistic == "mean":
        return st.mean(h)
    return st.quantile(h, float(statistic[1:]) / 100, confidence)


def _min_n(statistic: str, confidence: float) -> int:
    if statistic != ERROR_RATE and statistic.startswith("p"):
        return st.min_requests_for(float(statistic[1:]) / 100, confidence)
    return st.MIN_REQUESTS


@dataclass(frozen=True)
class Row:
    """One metric compared: candidate - baseline. Latencies in ms, error rates as fractions."""

    baseline: str
    candidate: str
    kind: str
    statistic: str
    baseline_value: float
    candidate_value: float
    difference: float
    ci_low: float | None
    ci_high: float | None
    significant: bool
    confidence: float
    n: tuple[int, int]  # the sample sizes (baseline, candidate)
    detectable: float | None  # the smallest difference detectable with 80% power at these sizes
    effect: float | None  # a difference worth detecting (a gate's or check's limit, else the default) ...
    required_n: int | None  # ... and the requests per variant that would detect it with 80% power
    min_n: int  # requests per side below which no interval is given
    words: tuple[str, str] = ("", "")  # how the verdict names the baseline and the candidate

    @property
    def metric(self) -> str:
        return metric_name(self.kind, self.statistic)

    @property
    def is_rate(self) -> bool:
        return self.statistic == ERROR_RATE

    @property
    def relative(self) -> float | None:
        return self.difference / self.baseline_value if self.baseline_value else None

    def as_dict(self) -> dict:
        digits = 6 if self.is_rate else 3

        def r(value: float | None) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "metric": self.metric,
            "baseline_value": r(self.baseline_value),
            "candidate_value": r(self.candidate_value),
            "difference": r(self.difference),
            "ci_low": r(self.ci_low),
            "ci_high": r(self.ci_high),
            "significant": self.significant,
            "kind": self.kind,
            "statistic": self.statistic,
            "unit": "fraction" if self.is_rate else "ms",
            "confidence": self.confidence,
            "baseline_n": self.n[0],
            "candidate_n": self.n[1],
            "relative_difference": None if self.relative is None else round(self.relative, 6),
            "detectable": r(self.detectable),
            "effect": r(self.effect),
            "required_n": self.required_n,
            "verdict": self.verdict(),
        }

    # --- words ------------------------------------------------------------------------------------
    def amount(self, value: float | None, signed: bool = False) -> str:
        """A value of this metric as text: ``4.1 ms``, ``0.25 pp`` (a difference of rates) ."""
        if value is None:
            return "n/a"
        if self.is_rate:
            return f"{value * 100:{'+' if signed else ''}.2f} pp"
        return f"{_ms(value, signed)} ms"

    def level(self, value: float) -> str:
        """A value (not a difference): ``41.3 ms``, ``1.02%``."""
        return f"{value * 100:.2f}%" if self.is_rate else f"{_ms(value)} ms"

    def interval(self) -> str:
        if self.ci_low is None:
            return "n/a"
        if self.is_rate:
            return f"{self.ci_low * 100:+.2f} to {self.ci_high * 100:+.2f} pp"
        return f"{_ms(self.ci_low, True)} to {_ms(self.ci_high, True)} ms"

    def short(self) -> str:
        """The table's verdict column."""
        if self.ci_low is None:
            return f"too few requests (needs {self.min_n:,} per side)"
        if self.significant:
            if self.is_rate:
                return "more errors" if self.difference > 0 else "fewer errors"
            return "slower" if self.difference > 0 else "faster"
        return f"no detectable difference (detectable: {self.amount(self.detectable)})"

    def verdict(self) -> str:
        """A plain-language sentence: what the data say, at what confidence, and what they cannot say."""
        base, cand = self.words if any(self.words) else (self.baseline, self.candidate)
        what = _what(self.kind, self.statistic)
        level = f"{self.confidence * 100:g}% CI"
        if self.ci_low is None:
            return (
                f"too few requests to compare {what}: {self.n[0]:,} and {self.n[1]:,}, an interval needs "
                f"{self.min_n:,} on each side"
            )
        if self.significant:
            if self.is_rate:
                more = "more" if self.difference > 0 else "less"
                return f"{cand} fails {more} often than {base}: {self.amount(self.difference, True)} ({level} {self.interval()})"
            slower = "slower" if self.difference > 0 else "faster"
            relative = f" ({self.relative:+.1%})" if self.relative is not None else ""
            low, high = sorted((abs(self.ci_low), abs(self.ci_high)))
            return (
                f"{cand} is {slower} than {base} at {what} by {self.amount(abs(self.difference))}{relative}, "
                f"{level} {_ms(low)} to {self.amount(high)}"
            )
        text = (
            f"no detectable difference at {what} at this sample size ({self.amount(self.difference, True)}, "
            f"{level} {self.interval()}); the smallest detectable difference is {self.amount(self.detectable)} "
            "(80% power)"
        )
        if self.required_n and self.effect and self.required_n > min(self.n):
            text += (
                f"; detecting {self.effect_text()} would take about {self.required_n:,} requests per variant"
            )
        return text

    def effect_text(self) -> str:
        """``a 5% difference (2.21 ms)``, ``0.10 pp``."""
        if self.is_rate or not self.effect or not self.baseline_value:
            return self.amount(self.effect)
        return f"a {self.effect / self.baseline_value:.0%} difference ({self.amount(self.effect)})"


def _ms(value: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    size = abs(value)
    digits = 2 if size < 10 else 1 if size < 1000 else 0
    return f"{value:{sign},.{digits}f}"


Effect = Callable[[str, str, float], float | None]  # (kind, statistic, baseline value) -> a difference


def default_effect(kind: str, statistic: str, baseline_value: float) -> float | None:
    if statistic == ERROR_RATE:
        return DEFAULT_RATE_EFFECT
    return DEFAULT_RELATIVE_EFFECT * baseline_value if baseline_value > 0 else None


def compare(
    baseline: Sample,
    candidate: Sample,
    confidence: float = CONFIDENCE,
    statistics: Iterable[str] = STATISTICS,
    effect: Effect = default_effect,
    words: tuple[str, str] = ("", ""),
) -> list[Row]:
    """Every kind of timing both samples have (the headline latency first), at each statistic, then the
    error rate."""
    statistics = tuple(statistics)
    kinds = [
        k
        for k in baseline.timings
        if k in candidate.timings and baseline.timings[k].count and candidate.timings[k].count
    ]
    kinds.sort(key=lambda k: (k != LATENCY, k))
    rows = []
    for kind in kinds:
        a, b = baseline.timings[kind], candidate.timings[kind]
        for statistic in statistics:
            diff = st.difference(
                _estimate(a, statistic, confidence), _estimate(b, statistic, confidence), confidence
            )
            delta = effect(kind, statistic, diff.baseline)
            rows.append(
                _row(
                    baseline,
                    candidate,
                    kind,
                    statistic,
                    diff,
                    confidence,
                    (a.count, b.count),
                    delta,
                    diff.required_n(delta, confidence) if delta else None,
                    words,
                )
            )
    if baseline.requests and candidate.requests:
        diff = st.proportion_difference(
            baseline.failures, baseline.requests, candidate.failures, candidate.requests, confidence
        )
        delta = effect(LATENCY, ERROR_RATE, diff.baseline)
        rows.append(
            _row(
                baseline,
                candidate,
                LATENCY,
                ERROR_RATE,
                diff,
                confidence,
                (baseline.requests, candidate.requests),
                delta,
                st.required_n_rate(diff.baseline, delta, confidence) if delta else None,
                words,
            )
        )
    return rows


def _row(
    baseline: Sample,
    candidate: Sample,
    kind: str,
    statistic: str,
    diff: st.Difference,
    confidence: float,
    n: tuple[int, int],
    effect: float | None,
    required: int | None,
    words: tuple[str, str],
) -> Row:
    return Row(
        baseline.label,
        candidate.label,
        kind,
        statistic,
        diff.baseline,
        diff.candidate,
        diff.difference,
        diff.low,
        diff.high,
        diff.significant,
        confidence,
        n,
        diff.detectable,
        effect,
        required,
        _min_n(statistic, confidence),
        words,
    )


def pairs(samples: list[Sample], baseline: str | None = None) -> list[tuple[Sample, Sample]]:
    """(baseline, candidate) pairs: every other sample against the one whose target is ``baseline``;
    without one, every pair, the earlier name as the baseline."""
    ordered = sorted(samples, key=lambda s: s.label)
    chosen = [s for s in ordered if baseline is not None and s.target == baseline]
    if chosen:
        return [(chosen[0], s) for s in ordered if s is not chosen[0]]
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]


# --- presentation -----------------------------------------------------------------------------


def table(rows: list[Row], title: Callable[[Row], str] | None = None) -> list[str]:
    """The rows as text, one block per pair (``title`` names a block; default: candidate vs baseline)."""
    title = title or (lambda row: f"{row.candidate} vs {row.baseline} (baseline)")
    level = f"{rows[0].confidence * 100:g}% CI" if rows else "CI"
    header = ["metric", "baseline", "candidate", "difference", level, "verdict"]
    blocks: dict[str, list[list[str]]] = {}
    for row in rows:
        blocks.setdefault(title(row), []).append(
            [
                row.metric,
                row.level(row.baseline_value),
                row.level(row.candidate_value),
                row.amount(row.difference, True)
                + (f" ({row.relative:+.1%})" if row.relative is not None and not row.is_rate else ""),
                row.interval(),
                row.short(),
            ]
        )
    cells = [header] + [r for block in blocks.values() for r in block]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]

    def line(c: list[str]) -> str:
        return "    " + "  ".join(
            [c[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(c[1:-1], widths[1:], strict=True)] + [c[-1]]
        )

    out = []
    for name, block in blocks.items():
        out += [f"  {name}", line(header)] + [line(c) for c in block]
    return out


def headline(rows: list[Row]) -> str:
    """One sentence for a pair's rows: what is significant, with one example (the latency's p95 where
    it is among them), else what the sample could have detected."""
    if not rows:
        return ""
    first = rows[0]
    base, cand = first.words if any(first.words) else (first.baseline, first.candidate)
    timing = [r for r in rows if not r.is_rate]
    slower = [r for r in timing if r.significant and r.difference > 0]
    faster = [r for r in timing if r.significant and r.difference < 0]
    rate = next((r for r in rows if r.is_rate), None)
    sentences = []
    for group, word in ((slower, "slower"), (faster, "faster")):
        if group:
            example = next((r for r in group if (r.kind, r.statistic) == (LATENCY, "p95")), group[0])
            sentences.append(
                f"{cand} is {word} than {base} at {_list(_what(r.kind, r.statistic) for r in group)} "
                f"({example.metric.removesuffix('_ms')} {example.amount(example.difference, True)}, "
                f"{example.confidence * 100:g}% CI {example.interval()})"
            )
    if rate is not None and rate.significant:
        sentences.append(
            f"{cand} fails {'more' if rate.difference > 0 else 'less'} often than {base} "
            f"({rate.amount(rate.difference, True)}, {rate.confidence * 100:g}% CI {rate.interval()})"
        )
    if sentences:
        return "; ".join(sentences) + "."
    p95 = next((r for r in timing if r.metric == "p95_ms" and r.detectable is not None), None)
    if p95 is None:
        return f"{cand} vs {base}: too few requests to compare."
    text = (
        f"no detectable difference between {cand} and {base} at this sample size; the smallest detectable "
        f"difference at p95 is {p95.amount(p95.detectable)} (80% power)"
    )
    if p95.required_n and p95.effect and p95.required_n > min(p95.n):
        text += f"; detecting {p95.effect_text()} would take about {p95.required_n:,} requests per variant"
    return text + "."


def _list(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
