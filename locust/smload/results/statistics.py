"""The statistics of an A/B comparison, over the recorded histograms (:mod:`smload.measure.histogram`):
an estimate and its standard error per metric, the difference of two independent estimates with a
confidence interval, its smallest detectable size and the sample size that would detect a given
one, the difference of two error rates, and the goodness of fit of a traffic split.

The methods, and why (docs/ab-testing.md has the long form and the measured coverage):

* **Quantiles** (p50, p95, p99): the standard error of a sample quantile from the order statistics
  around it, ``SE = (X(s) - X(r)) * sqrt(n p (1-p)) / (s - r)`` with the ranks ``r, s = n p -+ z
  sqrt(n p (1-p))``: the distribution-free, order-statistic interval for one quantile, turned into a
  standard error (McKean & Schrader 1984; Price & Bonett 2002 use it for a difference of two
  medians). It assumes nothing about the shape of the latencies. The histogram knows each value to
  its bucket (within 1%): a value is placed inside its bucket where its rank among the bucket's
  values puts it (:func:`at_ranks`), and the variance of that placement is added, so that the
  interval covers the quantile of the unrounded latencies. (With the bucket's own value instead,
  quantiles move 2% at a time and the false-positive rate of a difference drifts from 2% to 9% with
  the sample size: bench/bench_ab.py measured it.)
* **Mean**: exact (the histogram keeps the exact sum); its standard error from the bucketed values.
* **Difference of two** (two variants in one run, or one name in two runs: independent samples):
  ``d +- z sqrt(SE_a**2 + SE_b**2)``; significant when the interval excludes 0.
* **Error rates**: Newcombe's hybrid score interval for a difference of proportions (method 10 of
  Newcombe 1998), built from each rate's Wilson interval: it keeps its coverage with few or no
  failures, where the textbook (Wald) interval collapses to a point.
* **Power**: the smallest difference detectable with 80% power at this size, ``(z + z_0.8) SE``,
  and the requests per variant that would detect a difference ``delta``:
  ``(z + z_0.8)**2 (sigma_a**2 + sigma_b**2) / delta**2``, sigma the per-request spread (``SE sqrt(n)``)
  (and the placement's variance, which no sample size removes).
* **Traffic split**: Pearson's chi-square goodness of fit of the observed counts to the expected
  weights, its p-value from the regularized incomplete gamma function.

Pure Python (the standard library's NormalDist): numbers of a handful of statistics per metric, no
arrays; numpy and scipy would add ~100 MB to an image whose budget is 300 MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from smload.measure.histogram import RELATIVE_ERROR, Histogram, bucket_index, bucket_value

POWER = 0.80  # the power of "the smallest detectable difference" and of the sample sizes
MIN_REQUESTS = 20  # per side: below this no interval is given (no method keeps its promise there)
_NORMAL = NormalDist()
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)  # the histogram's bucket ratio


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def z_power(power: float = POWER) -> float:
    return _NORMAL.inv_cdf(power)


@dataclass(frozen=True)
class Estimate:
    """A statistic of one sample. ``se`` is None when the sample is too small to give one."""

    value: float
    se: float | None
    n: int
    sampling_se: float | None = None  # the part of ``se`` that shrinks with 1/sqrt(n) (rounding excluded)

    @property
    def rounding(self) -> float:
        """The variance of the histogram's rounding in ``se`` (which no sample size removes)."""
        if self.se is None or self.sampling_se is None:
            return 0.0
        return max(0.0, self.se**2 - self.sampling_se**2)

    @property
    def spread(self) -> float | None:
        """The per-request standard deviation of this statistic (``SE sqrt(n)``): what sample sizes scale."""
        se = self.sampling_se if self.sampling_se is not None else self.se
        return None if se is None else se * math.sqrt(self.n)


def min_requests_for(q: float, confidence: float) -> int:
    """The smallest sample whose order-statistic interval for the q-quantile lies inside the sample:
    about z**2 (1-q)/q ... z**2 q/(1-q) (p99 at 95%: 381)."""
    z2 = z_value(confidence) ** 2
    return max(MIN_REQUESTS, math.ceil(z2 * max(q / (1 - q), (1 - q) / q)) + 1)


def at_ranks(h: Histogram, ranks: list[int]) -> list[tuple[float, float]]:
    """The ``ranks``-th smallest recorded values (1-based, ascending), each with the variance of its
    place inside its bucket. The histogram knows a value only to its bucket (within 1%); the j-th of
    the c values in a bucket is placed where the j-th of c uniform draws is expected, j/(c+1) of the
    way across (the bucket's edges narrowed to the exact min and max), with that order statistic's
    variance, ``width**2 j (c-j+1) / ((c+1)**2 (c+2))``: width**2/12 for a lone value, little once a
    bucket holds dozens; the first and last values are the exact min and max. Interpolated this way a quantile moves with the data instead of jumping a
    bucket (2%) at a time, which would make differences of two lumpy and their tests miscalibrated."""
    out: list[tuple[float, float]] = []
    seen, i = 0, 0
    for index in sorted(h.counts):
        c = h.counts[index]
        while i < len(ranks) and ranks[i] <= seen + c:
            j = ranks[i] - seen
            if ranks[i] in (1, h.count):  # the extremes are known exactly
                out.append((h.min if ranks[i] == 1 else h.max, 0.0))
                i += 1
                continue
            upper = _GAMMA**index
            low, high = max(upper / _GAMMA, h.min), min(upper, h.max)
            if high < low:  # a bucket the min/max clamp empties (a value at MIN_MS)
                low = high = min(max(bucket_value(index), h.min), h.max)
            width = high - low
            out.append(
                (low + width * j / (c + 1), width * width * j * (c - j + 1) / ((c + 1) ** 2 * (c + 2)))
            )
            i += 1
        seen += c
        if i == len(ranks):
            break
    return out + [(h.max, 0.0)] * (len(ranks) - len(out))


def rounding_variance(value: float) -> float:
    """The variance of a lone value placed in the bucket that holds ``value`` (width**2/12): the most
    the histogram's resolution adds to an estimate there."""
    if value <= 0:
        return 0.0
    upper = _GAMMA ** bucket_index(value)
    width = upper - upper / _GAMMA
    return width * width / 12.0


def quantile(h: Histogram, q: float, confidence: float = 0.95) -> Estimate:
    """The q-quantile (the nearest rank, placed inside its bucket: within 1% of the report's value)
    and its distribution-free standard error."""
    n = h.count
    if n == 0:
        return Estimate(0.0, None, 0)
    rank = max(1, math.ceil(q * n))
    ((value, placement),) = at_ranks(h, [rank])
    if n < min_requests_for(q, confidence):
        return Estimate(value, None, n)
    sd = math.sqrt(n * q * (1 - q))
    half = z_value(confidence) * sd
    low_rank, high_rank = max(1, round(n * q - half)), min(n, round(n * q + half))
    if high_rank <= low_rank:
        return Estimate(value, None, n)
    (low, _), (high, _) = at_ranks(h, [low_rank, high_rank])
    sampling = (high - low) * sd / (high_rank - low_rank)
    return Estimate(value, math.sqrt(sampling * sampling + placement), n, sampling)


def mean(h: Histogram) -> Estimate:
    """The exact mean and its standard error (the variance from the bucketed values, within 2%)."""
    n = h.count
    if n < MIN_REQUESTS:
        return Estimate(h.mean, None, n)
    m = h.mean
    squares = sum(count * (bucket_value(index) - m) ** 2 for index, count in h.counts.items())
    se = math.sqrt(squares / (n - 1) / n)
    return Estimate(m, se, n)


@dataclass(frozen=True)
class Difference:
    """candidate - baseline, with its interval. ``low``/``high``/``detectable`` are None when either
    sample was too small; ``significant`` is then False."""

    baseline: float
    candidate: float
    difference: float
    low: float | None
    high: float | None
    detectable: float | None  # the smallest difference detectable with POWER at these sample sizes
    spreads: tuple[float, float] | None  # per-request spreads (baseline, candidate): for sample sizes
    rounding: float = 0.0  # the variance the histogram's rounding adds, whatever the sample size

    @property
    def significant(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    @property
    def relative(self) -> float | None:
        return self.difference / self.baseline if self.baseline else None

    def required_n(self, delta: float, confidence: float) -> int | None:
        """Requests per variant (equal sizes) that detect a difference ``delta`` with POWER: the n with
        ``(z + z_power) sqrt((sigma_a**2 + sigma_b**2) / n + rounding) = delta``. None when no n will:
        ``delta`` is within what the 1% buckets can resolve."""
        if self.spreads is None or delta <= 0:
            return None
        a, b = self.spreads
        room = (delta / (z_value(confidence) + z_power())) ** 2 - self.rounding
        if room <= 0:
            return None
        return max(MIN_REQUESTS, math.ceil((a * a + b * b) / room))


def difference(baseline: Estimate, candidate: Estimate, confidence: float = 0.95) -> Difference:
    d = candidate.value - baseline.value
    if baseline.se is None or candidate.se is None:
        return Difference(baseline.value, candidate.value, d, None, None, None, None)
    se = math.sqrt(baseline.se**2 + candidate.se**2)
    z = z_value(confidence)
    return Difference(
        baseline.value,
        candidate.value,
        d,
        d - z * se,
        d + z * se,
        (z + z_power()) * se,
        (baseline.spread or 0.0, candidate.spread or 0.0),
        baseline.rounding + candidate.rounding,
    )


# --- proportions --------------------------------------------------------------------------------


def wilson(failures: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion."""
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = failures / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def proportion_difference(
    base_failures: int, base_n: int, cand_failures: int, cand_n: int, confidence: float = 0.95
) -> Difference:
    """Candidate's rate minus the baseline's, with Newcombe's hybrid score interval."""
    pa = base_failures / base_n if base_n else 0.0
    pb = cand_failures / cand_n if cand_n else 0.0
    d = pb - pa
    if min(base_n, cand_n) < MIN_REQUESTS:
        return Difference(pa, pb, d, None, None, None, None)
    la, ua = wilson(base_failures, base_n, confidence)
    lb, ub = wilson(cand_failures, cand_n, confidence)
    low = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return Difference(
        pa,
        pb,
        d,
        low,
        high,
        _detectable_rate(pa, base_n, cand_n, confidence),
        (math.sqrt(pa * (1 - pa)), math.sqrt(pb * (1 - pb))),
    )


def _detectable_rate(pa: float, na: int, nb: int, confidence: float) -> float:
    """The smallest increase over the baseline's rate ``pa`` detectable with POWER (normal theory):
    the fixed point of ``delta = (z + z_power) sqrt(pa(1-pa)/na + pb(1-pb)/nb)``, ``pb = pa + delta``."""
    k = z_value(confidence) + z_power()
    delta = 1.0 / min(na, nb)
    for _ in range(60):
        pb = min(1.0, pa + delta)
        delta = k * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return delta


def required_n_rate(pa: float, delta: float, confidence: float = 0.95) -> int | None:
    """Requests per variant that detect an increase ``delta`` over the rate ``pa`` with POWER."""
    if delta <= 0:
        return None
    pb = min(1.0, pa + delta)
    k = z_value(confidence) + z_power()
    return max(MIN_REQUESTS, math.ceil(k * k * (pa * (1 - pa) + pb * (1 - pb)) / (delta * delta)))


# --- goodness of fit ----------------------------------------------------------------------------


def chi_square(observed: list[int], expected_shares: list[float]) -> tuple[float, int, float]:
    """Pearson's chi-square goodness of fit: (statistic, degrees of freedom, p-value). The shares
    are normalised; a category with an expected share of 0 that was observed gives p = 0."""
    n = sum(observed)
    total = sum(expected_shares)
    statistic = 0.0
    for count, share in zip(observed, expected_shares, strict=True):
        expected = n * share / total
        if expected == 0:
            if count:
                return math.inf, len(observed) - 1, 0.0
            continue
        statistic += (count - expected) ** 2 / expected
    df = sum(1 for s in expected_shares if s > 0) - 1
    return statistic, df, chi_square_sf(statistic, df)


def chi_square_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square with ``df`` degrees of freedom."""
    if df <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return _gamma_q(df / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x): a series below a + 1, Lentz's continued
    fraction above (Numerical Recipes, 6.2), each to double precision."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return min(1.0, math.exp(log_prefix) * h)
