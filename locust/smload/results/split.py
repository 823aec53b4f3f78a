"""The traffic split check: did each production variant get its configured share of the requests?
Pearson's chi-square goodness of fit of the observed counts to the expected weights (from
``--expected-split``, the emulator's configuration or DescribeEndpoint's ``CurrentWeight``).

The split is flagged at p < 0.001, not at the comparisons' 5%: SageMaker routes each request at
random by weight, so a correctly configured endpoint would raise a false alarm at the end of one
run in twenty at 5%; at 0.1% that is one in a thousand, while a real misconfiguration (60/40 for
70/30) is found at p < 1e-6 from a few hundred requests. Pure code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import statistics as st

ALPHA = 0.001
MIN_EXPECTED = 5  # the chi-square approximation's usual rule: every expected count at least 5
_PAIR = re.compile(
    r"\s*(?P<name>[^=,\s]+)\s*=\s*(?P<weight>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<percent>%?)\s*"
)


def parse_expected(text: str) -> dict[str, float]:
    """``variant-a=0.7,variant-b=0.3`` (or ``70%``, or any positive weights: SageMaker's are relative)
    -> shares summing to 1. Raises ValueError with the reason."""
    weights: dict[str, float] = {}
    for part in str(text).split(","):
        match = _PAIR.fullmatch(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not VARIANT=WEIGHT (e.g. variant-a=0.7,variant-b=0.3)")
        name, weight = match.group("name"), float(match.group("weight"))
        if name in weights:
            raise ValueError(f"variant {name!r} is given twice")
        weights[name] = weight
    if len(weights) < 2:
        raise ValueError("give the weight of every variant (at least two), e.g. variant-a=0.7,variant-b=0.3")
    return normalise(weights)


def normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if not all(math.isfinite(w) and w >= 0 for w in weights.values()) or total <= 0:
        raise ValueError("weights must be numbers >= 0, not all 0")
    return {name: w / total for name, w in weights.items()}


@dataclass(frozen=True)
class Split:
    expected: dict[str, float]  # shares, summing to 1
    counts: dict[str, int]  # requests that reached each variant
    source: str  # where the expected shares came from
    statistic: float | None
    p_value: float | None  # None: too few requests to test

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def observed(self) -> dict[str, float]:
        n = self.requests
        return {name: (count / n if n else 0.0) for name, count in self.counts.items()}

    @property
    def ok(self) -> bool | None:
        return None if self.p_value is None else self.p_value >= ALPHA

    def as_dict(self) -> dict:
        return {
            "expected": {k: round(v, 6) for k, v in self.expected.items()},
            "observed": {k: round(v, 6) for k, v in self.observed.items()},
            "p_value": None if self.p_value is None else float(f"{self.p_value:.4g}"),
            "ok": self.ok,
            "counts": dict(self.counts),
            "requests": self.requests,
            "source": self.source,
            "chi_square": None if self.statistic is None else round(self.statistic, 4),
            "alpha": ALPHA,
        }

    def describe(self) -> str:
        """One line: ``traffic split OK: variant-a 70.2% (expected 70%), ... of 10,432 requests (chi-square p = 0.61)``."""
        observed = self.observed
        shares = ", ".join(
            f"{name} {observed.get(name, 0.0):.1%} (expected {self.expected.get(name, 0.0):.1%})"
            for name in sorted(set(self.expected) | set(self.counts))
        )
        figures = f"{shares} of {self.requests:,} requests; expected from {self.source}"
        if self.p_value is None:
            return f"traffic split: {figures}: too few requests to test it"
        test = f"chi-square p = {self.p_value:.2g}"
        if self.ok:
            return f"traffic split OK: {figures} ({test})"
        return (
            f"traffic split WARNING: the observed split is not the expected one ({test} < {ALPHA:g}): {figures}. "
            "Check the endpoint's variant weights (DescribeEndpoint), or the --expected-split given"
        )


def check(counts: dict[str, int], expected: dict[str, float], source: str) -> Split:
    """The observed ``counts`` per variant against ``expected`` shares; variants in either are tested
    (one that was expected to get nothing but got requests fails at once)."""
    expected = normalise(expected)
    names = sorted(set(expected) | set(counts))
    observed = [counts.get(name, 0) for name in names]
    shares = [expected.get(name, 0.0) for name in names]
    n = sum(observed)
    full = {name: counts.get(name, 0) for name in names}
    if n == 0 or min((n * s for s in shares if s > 0), default=0) < MIN_EXPECTED:
        return Split(expected, full, source, None, None)
    statistic, _df, p_value = st.chi_square(observed, shares)
    return Split(expected, full, source, statistic, p_value)
