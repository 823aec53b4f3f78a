"""Pass/fail checks: ``--check "p95<300ms"``, evaluated when the test ends.

Grammar (whitespace between the parts is ignored)::

    check   := metric [ "[" name "]" ] op number unit
             | metric "[" name "]" "-" metric "[" name "]" op [ "-" ] number unit     (a comparison)
    metric  := latency | error_rate | rps | output_tps | goodput | achieved_rate | dropped
    latency := [ kind "_" ] ( pNN | pNN.N | avg | max )      (p50, p90, p99.9, ... any 0 < NN < 100)
    kind    := ttft | itl | tpot                             (LLM tests: time to first token,
                                                              inter-token latency, time per output token)
             | schedule_lag                                  (open loop: actual send - intended start)
    op      := "<" | "<=" | ">" | ">="
    unit    := "ms" | "s"   for latencies
               "%"          for error_rate and goodput (the share of requests that met --goodput),
                            and dropped as a share of the arrivals
               (none)       for rps (requests per second), output_tps (output tokens per second),
                            achieved_rate (arrivals that started a request, per second), dropped (a count)

Open loop (``--arrival-rate``): ``achieved_rate`` and ``dropped`` (arrivals that found every executor
busy) apply to all requests together (a dropped arrival never had a name); in a closed-loop test they
fail with "not an open-loop test".

``name`` selects one request name (``p99[ab-test/variant-a]<200ms``); it is taken verbatim between
the brackets, so it may hold ``/``, spaces and punctuation, anything but ``]``. Without it, a check
applies to all requests together.

A comparison, ``p95[ab/variant-b]-p95[ab/variant-a]<10ms``, is the difference of one metric (pNN,
avg or error_rate, whose difference is in percentage points: ``%`` or ``pp``) between two names,
estimated with its confidence interval (:mod:`.statistics`, as the A/B comparison does). It fails
when the difference breaks the threshold *and* is significant at 95% (its interval excludes 0):
noise cannot fail it, a real difference of the wrong size does; it fails too when there are too
few requests for an interval. Several checks in one value (an environment variable, a config
file line, the web UI field) are separated by ``;`` or ``,`` outside brackets.

Pure code: no Locust import. The TestRun (:mod:`smload.run.verdict`) gathers an :class:`Observed`
per selection and calls :func:`evaluate`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from smload import exit_codes
from smload.measure.histogram import Histogram
from smload.usage import UsageError

from . import statistics as st

OPTION = "--check"
LATENCY_METRICS = ("avg", "max")  # besides the percentiles
OTHER_METRICS = ("error_rate", "rps", "output_tps", "goodput", "achieved_rate", "dropped")
KINDS = ("ttft", "itl", "tpot", "schedule_lag")  # timing kinds a latency metric may name (smload.record)
RATES = ("rps", "output_tps", "achieved_rate")
OPEN_LOOP_ONLY = ("achieved_rate", "dropped")  # of all requests: a dropped arrival has no name
SHARES = ("error_rate", "goodput")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
EXAMPLES = (
    'e.g. "p95<300ms", "p99[ab-test/variant-a]<=0.5s", "error_rate<1%", "rps>=100", "ttft_p95<500ms", '
    '"tpot_p99<50ms", "output_tps>=1000", "goodput>=95%", "achieved_rate>=495", "dropped<0.1%", '
    '"schedule_lag_p99<2ms"'
)
COMPARED = ("avg", "error_rate")  # besides the percentiles: what a comparison can take (with an interval)
CONFIDENCE = 0.95

_METRIC = re.compile(r"[A-Za-z_]+[0-9]*(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_OPERATOR = re.compile(r"<=|>=|<|>|==|=|!=|=<|=>")


@dataclass(frozen=True)
class Check:
    """One parsed check. ``threshold`` is in the metric's base unit: ms, a fraction, or req/s."""

    text: str  # as the user wrote it (stripped)
    metric: str  # "p99.9", "avg", "max", "error_rate", "rps"
    name: str | None  # a request name, or None for all requests
    op: str
    threshold: float
    unit: str = ""  # as written: "ms", "s", "%" or ""
    minus: str | None = None  # a comparison: the name whose metric is subtracted (the baseline)

    @property
    def is_latency(self) -> bool:
        return is_latency_metric(self.metric)

    @property
    def quantile(self) -> float | None:
        base = split_kind(self.metric)[1]
        return float(base[1:]) / 100 if base.startswith("p") else None

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def describe(self) -> str:
        """A canonical spelling: ``p99[ab-test/variant-a] < 200 ms``."""
        target = f"[{self.name}]" if self.name is not None else ""
        if self.minus is not None:
            target += f" - {self.metric}[{self.minus}]"
        if self.minus is not None and self.metric == "error_rate":
            threshold = f"{_trim(round(self.threshold * 100, 4))} pp"
        elif self.unit == "s":
            threshold = f"{_trim(self.threshold / 1000)} s"
        else:
            threshold = format_value(self.metric, self.threshold, self.unit)
        return f"{self.metric}{target} {self.op} {threshold}"


def split_kind(metric: str) -> tuple[str | None, str]:
    """``tpot_p99`` -> ("tpot", "p99"); ``schedule_lag_p99`` -> ("schedule_lag", "p99"); ``p99`` -> (None, "p99")."""
    for kind in KINDS:
        if metric.startswith(kind + "_"):
            return kind, metric[len(kind) + 1 :]
    return None, metric


def is_latency_metric(metric: str) -> bool:
    base = split_kind(metric)[1]
    return base in LATENCY_METRICS or base.startswith("p")


def split_values(values: str | Iterable[str] | None) -> list[str]:
    """Every check expression in ``values`` (one string or the list argparse appends to), split at
    ``;`` and ``,`` outside brackets. Locust's web UI may hand over a plain string."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        depth, current = 0, []
        for char in str(value):
            if char == "[":
                depth += 1
            elif char == "]":
                depth = max(0, depth - 1)
            if char in ";," and depth == 0:
                out.append("".join(current))
                current = []
            else:
                current.append(char)
        out.append("".join(current))
    return [item.strip() for item in out if item.strip()]


def parse(text: str, option: str = OPTION) -> Check:
    """Parse one expression; raises :class:`UsageError` naming ``option`` and what is wrong."""
    source = text.strip()

    def fail(problem: str) -> UsageError:
        return UsageError(option, f"{source!r}: {problem} ({EXAMPLES})")

    if not source:
        raise fail("empty check")
    pos = 0

    def skip_spaces() -> None:
        nonlocal pos
        while pos < len(source) and source[pos].isspace():
            pos += 1

    match = _METRIC.match(source, pos)
    if not match:
        raise fail(
            "it must start with a metric: p50 ... p99.9, avg, max, error_rate, rps, ttft_p95, tpot_p99, "
            "output_tps, goodput, achieved_rate, dropped or schedule_lag_p99"
        )
    metric = _metric(match.group(0), fail)
    pos = match.end()
    skip_spaces()

    name = None
    if source.startswith("[", pos):
        end = source.find("]", pos + 1)
        if end < 0:
            raise fail("the request name has no closing ']'")
        name = source[pos + 1 : end].strip()
        if not name:
            raise fail("empty request name between [ and ]")
        if "[" in name:
            raise fail("a request name cannot contain '['")
        pos = end + 1
        skip_spaces()
        if metric in OPEN_LOOP_ONLY:
            raise fail(f"{metric} applies to all requests together: leave out [{name}]")

    minus = None
    if source.startswith("-", pos):
        pos, minus = _subtrahend(source, pos + 1, metric, name, fail)
        skip_spaces()

    match = _OPERATOR.match(source, pos)
    if not match or match.group(0) not in OPERATORS:
        found = (
            f"found {match.group(0)!r}"
            if match
            else f"found {source[pos : pos + 1]!r}"
            if pos < len(source)
            else "found nothing"
        )
        raise fail(f"expected a comparison <, <=, > or >= after {metric}, {found}")
    op = match.group(0)
    pos = match.end()
    skip_spaces()

    sign = 1.0
    if minus is not None and source.startswith("-", pos):  # a difference may have to be negative
        sign, pos = -1.0, pos + 1
        skip_spaces()
    match = _NUMBER.match(source, pos)
    if not match:
        raise fail(f"expected a number after {op!r}")
    number = float(match.group(0))
    pos = match.end()
    skip_spaces()
    unit = source[pos:].strip()
    if minus is not None and metric == "error_rate" and unit == "pp":
        unit = "%"  # percentage points: a difference of two rates
    return Check(source, metric, name, op, sign * _threshold(metric, number, unit, fail), unit, minus)


def _subtrahend(
    source: str, pos: int, metric: str, name: str | None, fail: Callable[[str], UsageError]
) -> tuple[int, str]:
    """``- p95[name]`` of a comparison, from just after the ``-``: (where it ends, the name)."""
    while pos < len(source) and source[pos].isspace():
        pos += 1
    match = _METRIC.match(source, pos)
    other = _metric(match.group(0), fail) if match else None
    if other is None or not source.startswith("[", match.end()):
        raise fail(f"a comparison subtracts the same metric of another name: {metric}[B]-{metric}[A]<LIMIT")
    if other != metric:
        raise fail(f"a comparison subtracts the same metric: {metric}[...] - {metric}[...], not {other}")
    if name is None:
        raise fail(f"a comparison names both sides: {metric}[B]-{metric}[A]<LIMIT")
    if not (metric in COMPARED or metric.startswith("p")):
        raise fail(f"{metric} has no confidence interval to compare: use a percentile, avg or error_rate")
    end = source.find("]", match.end() + 1)
    if end < 0:
        raise fail("the request name has no closing ']'")
    minus = source[match.end() + 1 : end].strip()
    if not minus or "[" in minus:
        raise fail("empty request name between [ and ]" if not minus else "a request name cannot contain '['")
    return end + 1, minus


def parse_all(values: str | Iterable[str] | None, option: str = OPTION) -> list[Check]:
    return [parse(text, option) for text in split_values(values)]


def _metric(word: str, fail: Callable[[str], UsageError]) -> str:
    kind, base = split_kind(word.lower())
    if kind is not None and base not in OTHER_METRICS:
        return f"{kind}_{_metric(base, fail)}"
    metric = word.lower()
    if metric in LATENCY_METRICS or metric in OTHER_METRICS:
        return metric
    if metric in ("mean", "average"):
        return "avg"
    if metric.startswith("p") and _NUMBER.fullmatch(metric[1:] or "x"):
        percent = float(metric[1:])
        if not 0 < percent < 100:
            raise fail(f"percentile {metric} is out of range: use p1 ... p99.99")
        return "p" + _trim(percent)
    raise fail(
        f"unknown metric {word!r}: use p50 ... p99.9, avg, max, error_rate, rps, ttft_/itl_/tpot_/schedule_lag_ "
        "with a percentile (tpot_p99), output_tps, goodput, achieved_rate or dropped"
    )


def _threshold(metric: str, number: float, unit: str, fail: Callable[[str], UsageError]) -> float:
    if is_latency_metric(metric):
        if unit == "ms":
            return number
        if unit == "s":
            return number * 1000.0
        if not unit:
            raise fail(f"{metric} is a latency: give its unit, ms or s")
        raise fail(f"unknown latency unit {unit!r}: use ms or s")
    if metric in SHARES:
        if unit != "%":
            raise fail(
                f"{metric} is a percentage: write it with %, e.g. {metric}<1%"
                if not unit
                else f"unexpected {unit!r} after the number: {metric} takes a percentage, e.g. 1%"
            )
        if number > 100:
            raise fail(f"{metric} cannot exceed 100%")
        return number / 100.0
    if metric == "dropped":
        if unit == "%":
            if number > 100:
                raise fail("dropped cannot exceed 100% of the arrivals")
            return number / 100.0
        if unit:
            raise fail(
                f"unexpected {unit!r} after the number: dropped is a count (dropped<10) or a share (dropped<1%)"
            )
        return number
    if unit not in ("", "/s"):
        what = {
            "rps": "requests per second, e.g. rps>=100",
            "achieved_rate": "requests per second, e.g. achieved_rate>=495",
        }.get(metric, "output tokens per second, e.g. output_tps>=1000")
        raise fail(f"unexpected {unit!r} after the number: {metric} is in {what}")
    return number


def _trim(number: float) -> str:
    return f"{number:.4f}".rstrip("0").rstrip(".")


def format_value(metric: str, value: float | None, unit: str = "") -> str:
    """How a value of ``metric`` reads in tables: ``212.4 ms``, ``1.25 s``, ``2.31 %``, ``153.2/s``;
    ``unit`` as written (``dropped`` is a count, or with ``%`` a share)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if is_latency_metric(metric):
        if split_kind(metric)[0] == "schedule_lag" and value < 10:
            return f"{_trim(round(value, 3))} ms"
        return f"{value / 1000:.3g} s" if value >= 10_000 else f"{_trim(round(value, 1))} ms"
    if metric in SHARES or (metric == "dropped" and unit == "%"):
        return f"{_trim(round(value * 100, 3))} %"
    if metric == "dropped":
        return f"{value:.0f}"
    return f"{_trim(round(value, 1))}/s"


# --- evaluation --------------------------------------------------------------------------------


@dataclass
class OpenLoop:
    """What an open-loop test's checks look at besides: the rate that started, the arrivals and drops."""

    achieved_rate: float
    arrivals: int
    dropped: int


@dataclass
class Observed:
    """What a check looks at for one selection (all requests, or one name): latencies recorded in a
    histogram (ms), the request and failure counts, and the throughput; for LLM tests the other kinds
    of timing (ttft, itl, tpot), the output tokens and the requests that met --goodput (None: not
    given)."""

    histogram: Histogram
    requests: int
    failures: int
    rps: float
    timings: dict[str, Histogram] = field(default_factory=dict)
    output_tokens: int = 0
    good: int | None = None
    open_loop: OpenLoop | None = None  # an open-loop test's arrivals (all requests only)

    def value(self, metric: str, unit: str = "") -> float | None:
        """The metric's value in its base unit, or None when there is nothing to measure it on."""
        if metric == "rps":
            return self.rps
        if metric in OPEN_LOOP_ONLY:
            if self.open_loop is None:
                return None
            if metric == "achieved_rate":
                return self.open_loop.achieved_rate
            if unit == "%":
                return self.open_loop.dropped / self.open_loop.arrivals if self.open_loop.arrivals else None
            return float(self.open_loop.dropped)
        if metric == "error_rate":
            return self.failures / self.requests if self.requests else None
        if metric == "output_tps":
            return self.output_tokens * self.rps / self.requests if self.requests else None
        if metric == "goodput":
            return self.good / self.requests if self.good is not None and self.requests else None
        kind, base = split_kind(metric)
        histogram = self.histogram if kind is None else self.timings.get(kind)
        if histogram is None or not histogram.count:
            return None
        if base == "avg":
            return histogram.mean
        if base == "max":
            return histogram.max
        return histogram.quantile(float(base[1:]) / 100)


@dataclass(frozen=True)
class Result:
    check: Check
    value: float | None
    passed: bool
    note: str = ""
    interval: tuple[float, float] | None = None  # a comparison's confidence interval

    def as_dict(self) -> dict:
        extra = (
            {}
            if self.check.minus is None
            else {
                "minus": self.check.minus,
                "ci_low": self.interval[0] if self.interval else None,
                "ci_high": self.interval[1] if self.interval else None,
            }
        )
        return extra | {
            "check": self.check.text,
            "metric": self.check.metric,
            "name": self.check.name,
            "op": self.check.op,
            "threshold": self.check.threshold,
            "value": self.value,
            "passed": self.passed,
            "note": self.note,
        }


def evaluate(checks: Iterable[Check], observe: Callable[[str | None], Observed | None]) -> list[Result]:
    """``observe(name)`` gives the observations for a request name (None: all requests), or None when
    no request had that name. A check that cannot be measured fails: a typo in a name must not pass."""
    results = []
    for check in checks:
        if check.minus is not None:
            results.append(_compare(check, observe(check.name), observe(check.minus)))
            continue
        observed = observe(check.name)
        if observed is None:
            results.append(Result(check, None, False, f"no request named {check.name!r}"))
            continue
        value = observed.value(check.metric, check.unit)
        if value is None:
            kind = split_kind(check.metric)[0]
            closed = observed.open_loop is None and (check.metric in OPEN_LOOP_ONLY or kind == "schedule_lag")
            results.append(
                Result(
                    check,
                    None,
                    False,
                    "not an open-loop test (--arrival-rate)" if closed else "no requests to measure",
                )
            )
            continue
        results.append(Result(check, value, check.holds(value)))
    return results


def _compare(check: Check, candidate: Observed | None, baseline: Observed | None) -> Result:
    """``metric[candidate] - metric[baseline] op threshold``: fails when broken and significant."""
    for name, observed in ((check.name, candidate), (check.minus, baseline)):
        if observed is None:
            return Result(check, None, False, f"no request named {name!r}")
    if check.metric == "error_rate":
        diff = st.proportion_difference(
            baseline.failures, baseline.requests, candidate.failures, candidate.requests, CONFIDENCE
        )
    elif check.metric == "avg":
        diff = st.difference(st.mean(baseline.histogram), st.mean(candidate.histogram), CONFIDENCE)
    else:
        q = check.quantile
        diff = st.difference(
            st.quantile(baseline.histogram, q, CONFIDENCE),
            st.quantile(candidate.histogram, q, CONFIDENCE),
            CONFIDENCE,
        )
    if diff.low is None or diff.high is None:
        return Result(check, diff.difference, False, "too few requests for a confidence interval")
    interval = (diff.low, diff.high)
    shown = (
        f"{CONFIDENCE:.0%} CI {_difference(check.metric, diff.low)} to {_difference(check.metric, diff.high)}"
    )
    if check.holds(diff.difference):
        return Result(check, diff.difference, True, shown, interval)
    if not diff.significant:
        return Result(
            check, diff.difference, True, f"{shown}: beyond the limit, but not significant", interval
        )
    return Result(check, diff.difference, False, f"{shown}: significant", interval)


def _difference(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:+.2f} pp"
    return f"{value:+.2f} ms"


def exit_code(results: list[Result], current: int | None, user_code_failed: bool) -> int | None:
    """The process exit code once checks were given: 3 if one failed; else 0 even if some requests
    failed (the checks say what is acceptable), unless user code raised (Locust's own code stands)
    or a code is already set (2 for bad options). Never lowers a code already set."""
    if any(not r.passed for r in results):
        return max(current or 0, exit_codes.CHECK_FAILED)
    if current is not None or user_code_failed:
        return current
    return 0


def table(results: list[Result]) -> list[str]:
    """The pass/fail table printed when a test ends."""
    rows = [
        (
            r.check.describe(),
            format_value(r.check.metric, r.value, r.check.unit),
            "PASS" if r.passed else "FAIL",
            r.note,
        )
        for r in results
    ]
    width = max([len("Check")] + [len(row[0]) for row in rows])
    value_width = max([len("Value")] + [len(row[1]) for row in rows])
    lines = [f"{'Check':<{width}}  {'Value':>{value_width}}  Result", "-" * (width + value_width + 10)]
    for check, value, verdict, note in rows:
        lines.append(f"{check:<{width}}  {value:>{value_width}}  {verdict}" + (f"  ({note})" if note else ""))
    failed = sum(not r.passed for r in results)
    lines.append(
        f"{len(results) - failed} of {len(results)} checks passed" + (f", {failed} failed" if failed else "")
    )
    return lines
