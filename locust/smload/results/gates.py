"""Regression gates for ``smload compare --max-regression``: ``p95<5%``, ``p99<20ms``,
``error_rate<0.1pp``, ``ttft_p95[NAME]<10%``. A gate fails when the candidate is worse,
significantly (its interval excludes 0), by at least the allowance; or when a side has too few
requests for an interval. Pure code over :class:`.compare.Row`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from smload.record import LATENCY
from smload.usage import UsageError

from .compare import ERROR_RATE, Effect, Row, default_effect, metric_name

OPTION = "--max-regression"
EXAMPLES = 'e.g. "p95<5%", "p99<20ms", "mean<3%", "error_rate<0.1pp", "ttft_p95[ep/variant-a]<10%"'
_GATE = re.compile(
    r"\s*(?P<metric>[A-Za-z_]+(?:[0-9]+(?:\.[0-9]+)?)?)\s*(?:\[(?P<name>[^\[\]]*)\])?\s*"
    r"(?P<op><=|<|>=|>|==|=)?\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)?\s*(?P<unit>\S*)\s*$"
)


@dataclass(frozen=True)
class Gate:
    """``p95<5%``: fail when the candidate is significantly worse at p95 by 5% of the baseline or more."""

    text: str
    kind: str
    statistic: str
    name: str | None
    limit: float  # a fraction of the baseline (relative), ms, or a fraction (error rate, in pp)
    relative: bool
    inclusive: bool  # "<=": a regression of exactly the limit is allowed

    @property
    def metric(self) -> str:
        return metric_name(self.kind, self.statistic)

    def allowed(self, baseline_value: float) -> float:
        return self.limit * baseline_value if self.relative else self.limit

    def describe(self) -> str:
        target = f"[{self.name}]" if self.name else ""
        op = "<=" if self.inclusive else "<"
        if self.statistic == ERROR_RATE:
            limit = f"{self.limit * 100:g} pp"
        elif self.relative:
            limit = f"{self.limit * 100:g}%"
        else:
            limit = f"{self.limit:g} ms"
        stat = self.statistic if self.kind == LATENCY else f"{self.kind}_{self.statistic}"
        return f"{stat}{target} {op} {limit}"


def parse(text: str, option: str = OPTION) -> Gate:
    source = str(text).strip()

    def fail(problem: str) -> UsageError:
        return UsageError(option, f"{source!r}: {problem} ({EXAMPLES})")

    match = _GATE.match(source)
    if not source or not match:
        raise fail("expected METRIC<LIMIT")
    metric = match.group("metric").lower()
    if metric == ERROR_RATE:
        kind, statistic = LATENCY, ERROR_RATE
    else:
        kind, _, statistic = metric.rpartition("_")
        kind = kind or LATENCY
        if statistic in ("avg", "average"):
            statistic = "mean"
        if statistic != "mean" and not re.fullmatch(r"p[0-9]+(?:\.[0-9]+)?", statistic):
            raise fail(
                f"unknown metric {match.group('metric')!r}: use p50 ... p99.9, mean or error_rate, "
                "optionally after a kind of timing (ttft_p95)"
            )
        if statistic != "mean":
            percent = float(statistic[1:])
            if not 0 < percent < 100:
                raise fail(f"percentile {statistic} is out of range: use p1 ... p99.9")
            statistic = "p" + f"{percent:.4f}".rstrip("0").rstrip(".")
    name = match.group("name")
    if name is not None and not name.strip():
        raise fail("empty request name between [ and ]")
    op = match.group("op")
    if op not in ("<", "<="):
        raise fail(
            "a regression gate is an upper limit: write METRIC<LIMIT"
            if op
            else "expected '<' after the metric"
        )
    if match.group("number") is None:
        raise fail(f"expected a number after {op!r}")
    number = float(match.group("number"))
    unit = match.group("unit")
    if statistic == ERROR_RATE:
        if unit != "pp":
            raise fail("error_rate regressions are in percentage points: write e.g. error_rate<0.1pp")
        return Gate(source, kind, statistic, name and name.strip(), number / 100, False, op == "<=")
    if unit == "%":
        return Gate(source, kind, statistic, name and name.strip(), number / 100, True, op == "<=")
    if unit in ("ms", "s"):
        return Gate(
            source,
            kind,
            statistic,
            name and name.strip(),
            number * (1000 if unit == "s" else 1),
            False,
            op == "<=",
        )
    raise fail(
        f"{statistic} needs a unit: % of the baseline, ms or s"
        if not unit
        else f"unknown unit {unit!r}: use %, ms or s"
    )


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    row: Row
    regressed: bool
    note: str

    def as_dict(self) -> dict:
        return {
            "gate": self.gate.text,
            "metric": self.row.metric,
            "baseline": self.row.baseline,
            "candidate": self.row.candidate,
            "allowed": round(self.gate.allowed(self.row.baseline_value), 6),
            "difference": self.row.as_dict()["difference"],
            "ci_low": self.row.as_dict()["ci_low"],
            "ci_high": self.row.as_dict()["ci_high"],
            "regressed": self.regressed,
            "note": self.note,
        }


def evaluate(gates: Iterable[Gate], rows: list[Row]) -> list[GateResult]:
    """Each gate against every row of its metric (and name): a regression is a difference that is
    significant, in the worse direction, and at least the allowance. A row without an interval (too
    few requests) fails: a gate that cannot be checked must not pass. A gate that matches no row is
    bad input (UsageError): a typo must not pass either."""
    results = []
    for gate in gates:
        matched = [
            r
            for r in rows
            if r.metric == gate.metric and (gate.name is None or gate.name in (r.baseline, r.candidate))
        ]
        if not matched:
            what = f" for {gate.name!r}" if gate.name else ""
            raise UsageError(
                OPTION, f"{gate.text!r}: neither report has {gate.metric}{what} in common to compare"
            )
        for row in matched:
            allowed = gate.allowed(row.baseline_value)
            if row.ci_low is None:
                results.append(GateResult(gate, row, True, "too few requests to compare"))
                continue
            worse = row.significant and row.difference > 0
            beyond = row.difference > allowed if gate.inclusive else row.difference >= allowed
            regressed = worse and beyond
            if regressed:
                note = f"regression: {row.amount(row.difference, True)} > allowed {row.amount(allowed)}"
            elif worse:
                note = f"significantly worse, within the allowed {row.amount(allowed)}"
            elif beyond:
                note = "larger than allowed but not significant (could be noise)"
            else:
                note = "ok"
            results.append(GateResult(gate, row, regressed, note))
    return results


def effect_of(gates: list[Gate]) -> Effect:
    """The effect sizes of the sample-size figures: a gate's allowance for its metric, else the default."""

    def effect(kind: str, statistic: str, baseline_value: float) -> float | None:
        for gate in gates:
            if gate.kind == kind and gate.statistic == statistic:
                return gate.allowed(baseline_value) or None
        return default_effect(kind, statistic, baseline_value)

    return effect
