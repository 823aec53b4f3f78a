"""Pass/fail checks: ``--check "p95<300ms"``, evaluated when the test ends.

Grammar (whitespace between the parts is ignored)::

    check   := metric [ "[" name "]" ] op number unit
    metric  := pNN | pNN.N | avg | max | error_rate | rps     (p50, p90, p99.9, ... any 0 < NN < 100)
             | achieved_rate | dropped | schedule_lag_pNN        (open loop: --arrival-rate)
    op      := "<" | "<=" | ">" | ">="
    unit    := "ms" | "s"   for latencies (pNN, avg, max, schedule_lag_pNN)
               "%"          for error_rate, and for dropped as a share of the arrivals
               (none)       for rps and achieved_rate (requests per second), dropped (a count)

Open loop: ``achieved_rate`` is the rate at which arrivals started requests, ``dropped`` the arrivals
that found every executor busy, ``schedule_lag_p99`` the generator's own delay (send - intended
start); the first two apply to all requests only (an arrival that was dropped never had a name).

``name`` selects one request name (``p99[ab-test/variant-a]<200ms``); it is taken verbatim between
the brackets, so it may hold ``/``, spaces and punctuation, anything but ``]``. Without it, a check
applies to all requests together. Several checks in one value (an environment variable, a config
file line, the web UI field) are separated by ``;`` or ``,`` outside brackets.

Pure code: no Locust import. The TestRun (:mod:`smload.run.verdict`) gathers an :class:`Observed`
per selection and calls :func:`evaluate`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from smload import exit_codes
from smload.measure.histogram import Histogram
from smload.usage import UsageError

OPTION = "--check"
LATENCY_METRICS = ("avg", "max")  # besides the percentiles
OTHER_METRICS = ("error_rate", "rps", "achieved_rate", "dropped")
OPEN_LOOP_ONLY = ("achieved_rate", "dropped")  # of all requests: a dropped arrival has no name
LAG = "schedule_lag_"  # schedule_lag_p99: a percentile of the schedule lag
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
EXAMPLES = ('e.g. "p95<300ms", "p99[ab-test/variant-a]<=0.5s", "error_rate<1%", "rps>=100", '
            '"achieved_rate>=495", "dropped<0.1%", "schedule_lag_p99<2ms"')

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

    @property
    def is_latency(self) -> bool:
        return is_latency_metric(self.metric)

    @property
    def quantile(self) -> float | None:
        percentile = _percentile_of(self.metric)
        return percentile / 100 if percentile is not None else None

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def describe(self) -> str:
        """A canonical spelling: ``p99[ab-test/variant-a] < 200 ms``."""
        target = f"[{self.name}]" if self.name is not None else ""
        if self.unit == "s":
            threshold = f"{_trim(self.threshold / 1000)} s"
        else:
            threshold = format_value(self.metric, self.threshold, self.unit)
        return f"{self.metric}{target} {self.op} {threshold}"


def is_latency_metric(metric: str) -> bool:
    return metric in LATENCY_METRICS or metric.startswith(("p", LAG))


def _percentile_of(metric: str) -> float | None:
    if metric.startswith(LAG):
        metric = metric[len(LAG):]
    return float(metric[1:]) if metric.startswith("p") else None


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
        raise fail("it must start with a metric: p50 ... p99.9, avg, max, error_rate, rps, achieved_rate, dropped "
                   "or schedule_lag_p99")
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

    match = _OPERATOR.match(source, pos)
    if not match or match.group(0) not in OPERATORS:
        found = f"found {match.group(0)!r}" if match else f"found {source[pos:pos + 1]!r}" if pos < len(source) else "found nothing"
        raise fail(f"expected a comparison <, <=, > or >= after {metric}, {found}")
    op = match.group(0)
    pos = match.end()
    skip_spaces()

    match = _NUMBER.match(source, pos)
    if not match:
        raise fail(f"expected a number after {op!r}")
    number = float(match.group(0))
    pos = match.end()
    skip_spaces()
    unit = source[pos:].strip()
    return Check(source, metric, name, op, _threshold(metric, number, unit, fail), unit)


def parse_all(values: str | Iterable[str] | None, option: str = OPTION) -> list[Check]:
    return [parse(text, option) for text in split_values(values)]


def _metric(word: str, fail: Callable[[str], UsageError]) -> str:
    metric = word.lower()
    if metric in LATENCY_METRICS or metric in OTHER_METRICS:
        return metric
    if metric in ("mean", "average"):
        return "avg"
    prefix = LAG if metric.startswith(LAG) else ""
    rest = metric[len(prefix):]
    if rest.startswith("p") and _NUMBER.fullmatch(rest[1:] or "x"):
        percent = float(rest[1:])
        if not 0 < percent < 100:
            raise fail(f"percentile {metric} is out of range: use p1 ... p99.99")
        return prefix + "p" + _trim(percent)
    raise fail(f"unknown metric {word!r}: use p50 ... p99.9, avg, max, error_rate, rps, achieved_rate, dropped or "
               "schedule_lag_p99")


def _threshold(metric: str, number: float, unit: str, fail: Callable[[str], UsageError]) -> float:
    if is_latency_metric(metric):
        if unit == "ms":
            return number
        if unit == "s":
            return number * 1000.0
        if not unit:
            raise fail(f"{metric} is a latency: give its unit, ms or s")
        raise fail(f"unknown latency unit {unit!r}: use ms or s")
    if metric == "error_rate":
        if unit != "%":
            raise fail("error_rate is a percentage: write it with %, e.g. error_rate<1%" if not unit
                       else f"unexpected {unit!r} after the number: error_rate takes a percentage, e.g. 1%")
        if number > 100:
            raise fail("error_rate cannot exceed 100%")
        return number / 100.0
    if metric == "dropped":
        if unit == "%":
            if number > 100:
                raise fail("dropped cannot exceed 100% of the arrivals")
            return number / 100.0
        if unit:
            raise fail(f"unexpected {unit!r} after the number: dropped is a count (dropped<10) or a share (dropped<1%)")
        return number
    if unit not in ("", "/s"):
        raise fail(f"unexpected {unit!r} after the number: {metric} is in requests per second, e.g. {metric}>=100")
    return number


def _trim(number: float) -> str:
    return f"{number:.4f}".rstrip("0").rstrip(".")


def format_value(metric: str, value: float | None, unit: str = "") -> str:
    """How a value of ``metric`` reads in tables: ``212.4 ms``, ``1.25 s``, ``2.31 %``, ``153.2/s``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if is_latency_metric(metric):
        if metric.startswith(LAG) and value < 10:
            return f"{_trim(round(value, 3))} ms"
        return f"{value / 1000:.3g} s" if value >= 10_000 else f"{_trim(round(value, 1))} ms"
    if metric == "error_rate" or (metric == "dropped" and unit == "%"):
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
    histogram (ms), the request and failure counts, and the throughput; in open loop the schedule lag
    (ms) and, for all requests, the arrivals."""

    histogram: Histogram
    requests: int
    failures: int
    rps: float
    schedule_lag: Histogram | None = None
    open_loop: OpenLoop | None = None

    def value(self, metric: str, unit: str = "") -> float | None:
        """The metric's value in its base unit, or None when there is nothing to measure it on."""
        if metric == "rps":
            return self.rps
        if metric == "error_rate":
            return self.failures / self.requests if self.requests else None
        if metric in OPEN_LOOP_ONLY:
            if self.open_loop is None:
                return None
            if metric == "achieved_rate":
                return self.open_loop.achieved_rate
            if unit == "%":
                return self.open_loop.dropped / self.open_loop.arrivals if self.open_loop.arrivals else None
            return float(self.open_loop.dropped)
        histogram = self.histogram
        if metric.startswith(LAG):
            histogram = self.schedule_lag
            if histogram is None:
                return None
        if not histogram.count:
            return None
        if metric == "avg":
            return histogram.mean
        if metric == "max":
            return histogram.max
        return histogram.quantile(_percentile_of(metric) / 100)


@dataclass(frozen=True)
class Result:
    check: Check
    value: float | None
    passed: bool
    note: str = ""

    def as_dict(self) -> dict:
        return {
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
        observed = observe(check.name)
        if observed is None:
            results.append(Result(check, None, False, f"no request named {check.name!r}"))
            continue
        value = observed.value(check.metric, check.unit)
        if value is None:
            open_loop = check.metric in OPEN_LOOP_ONLY or check.metric.startswith(LAG)
            results.append(Result(check, None, False, "not an open-loop test (--arrival-rate)" if open_loop
                                  and observed.open_loop is None else "no requests to measure"))
            continue
        results.append(Result(check, value, check.holds(value)))
    return results


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
    rows = [(r.check.describe(), format_value(r.check.metric, r.value, r.check.unit), "PASS" if r.passed else "FAIL",
             r.note)
            for r in results]
    width = max([len("Check")] + [len(row[0]) for row in rows])
    value_width = max([len("Value")] + [len(row[1]) for row in rows])
    lines = [f"{'Check':<{width}}  {'Value':>{value_width}}  Result", "-" * (width + value_width + 10)]
    for check, value, verdict, note in rows:
        lines.append(f"{check:<{width}}  {value:>{value_width}}  {verdict}" + (f"  ({note})" if note else ""))
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} checks passed" + (f", {failed} failed" if failed else ""))
    return lines
