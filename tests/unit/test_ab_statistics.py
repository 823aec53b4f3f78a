"""The A/B statistics (smload.results.statistics): published reference values for the proportion and
chi-square parts, and simulations from known distributions for the quantile and mean intervals, whose
properties (false-positive rate, coverage, power) are what the comparison promises. Each simulation
draws from a seeded generator, so the test is deterministic; the bounds are binomial noise around
the nominal rate at these repetitions, wide enough that a calibrated method passes for almost every
seed and narrow enough that a miscalibrated one (an interval twice too narrow: ~30% false positives)
fails. bench/bench_ab.py runs the same simulations at 2,000 repetitions (bench/RESULTS.md)."""

import math
import random
from statistics import NormalDist

import pytest

from smload.measure.histogram import Histogram, bucket_index
from smload.results import statistics as st

Z99 = NormalDist().inv_cdf(0.99)


def lognormal(median_ms: float, p99_ms: float) -> tuple[float, float]:
    """(mu, sigma) of the emulator's lognormal through a median and a p99."""
    return math.log(median_ms), math.log(p99_ms / median_ms) / Z99


def true_value(mu: float, sigma: float, statistic: str) -> float:
    if statistic == "mean":
        return math.exp(mu + sigma * sigma / 2)
    return math.exp(mu + sigma * NormalDist().inv_cdf(float(statistic[1:]) / 100))


def sample(rng: random.Random, mu: float, sigma: float, n: int) -> Histogram:
    h = Histogram()
    for _ in range(n):
        h.record(rng.lognormvariate(mu, sigma))
    return h


def difference(a: Histogram, b: Histogram, statistic: str, confidence: float = 0.95) -> st.Difference:
    if statistic == "mean":
        return st.difference(st.mean(a), st.mean(b), confidence)
    q = float(statistic[1:]) / 100
    return st.difference(st.quantile(a, q, confidence), st.quantile(b, q, confidence), confidence)


LATENCY_STATISTICS = ("p50", "p95", "p99", "mean")


def simulate(
    reps: int, n: int, a: tuple[float, float], b: tuple[float, float], seed: int
) -> dict[str, tuple[int, int]]:
    """Per statistic: (how many intervals were significant, how many covered the true difference)."""
    rng = random.Random(seed)
    out = {s: [0, 0] for s in LATENCY_STATISTICS}
    for _ in range(reps):
        ha, hb = sample(rng, *a, n), sample(rng, *b, n)
        for s in LATENCY_STATISTICS:
            d = difference(ha, hb, s)
            truth = true_value(*b, s) - true_value(*a, s)
            out[s][0] += d.significant
            out[s][1] += d.low <= truth <= d.high
    return {s: (sig, cov) for s, (sig, cov) in out.items()}


def test_identical_variants_false_positives_at_the_nominal_rate_and_intervals_cover():
    """The acceptance: identical variants (20 ms lognormal, p99 60 ms), 5,000 requests each, 40
    repetitions. Per statistic the false positives are Binomial(40, 0.05) (mean 2); over the four,
    160 intervals, at most 8 + 3 sd = 16 significant, and coverage near 95%."""
    reps = 40
    result = simulate(reps, 5000, lognormal(20, 60), lognormal(20, 60), seed=15)
    significant = sum(sig for sig, _cov in result.values())
    covered = sum(cov for _sig, cov in result.values())
    for statistic, (sig, _cov) in result.items():
        assert sig <= 7, f"{statistic}: {sig} of {reps} identical pairs significant (P(>=8) = 1e-4 at 5%)"
    assert significant <= 16, result
    assert 0.90 <= covered / (4 * reps) <= 0.995, result


def test_known_difference_detected_and_covered():
    """20 ms vs 22 ms medians (the same shape: every quantile 10% apart), 5,000 requests each: p50, p95
    and the mean found different every time; the intervals cover the true difference near 95%."""
    reps = 40
    result = simulate(reps, 5000, lognormal(20, 60), lognormal(22, 66), seed=16)
    for statistic in ("p50", "p95", "mean"):
        assert result[statistic][0] >= reps - 1, result
    covered = sum(cov for _sig, cov in result.values())
    assert 0.90 <= covered / (4 * reps) <= 0.995, result


def spread(mu: float, sigma: float, q: float) -> float:
    """The per-request standard deviation of a sample q-quantile: sqrt(q (1-q)) / density at the quantile."""
    x = true_value(mu, sigma, f"p{q * 100:g}")
    density = NormalDist().pdf((math.log(x) - mu) / sigma) / (x * sigma)
    return math.sqrt(q * (1 - q)) / density


def test_the_standard_error_of_a_percentile_is_estimated_without_bias():
    """Over 100 samples of 5,000, the order-statistic standard error of p95 averages the true one
    (asymptotic theory: spread / sqrt(n)) within 5%; one estimate scatters by about 20%."""
    rng = random.Random(19)
    mu, sigma = lognormal(20, 60)
    estimates = [st.quantile(sample(rng, mu, sigma, 5000), 0.95).sampling_se for _ in range(100)]
    truth = spread(mu, sigma, 0.95) / math.sqrt(5000)
    assert sum(estimates) / len(estimates) == pytest.approx(truth, rel=0.05)


def test_the_sample_size_it_names_detects_with_the_promised_power():
    """The planning formula: the requests per variant that detect a 5% p95 difference with 80% power
    (from the true spreads), and at that size the difference found in about 80% of 60 repetitions
    (0.8 +- 3 sd = 0.64 ... 0.96)."""
    rng = random.Random(17)
    a, b = lognormal(20, 60), lognormal(21, 63)  # 5% apart at every quantile
    delta = true_value(*b, "p95") - true_value(*a, "p95")
    # the placement of a quantile inside its bucket adds ~0.005 ms^2 at these bucket counts: negligible
    planned = st.Difference(0, 0, 0, None, None, None, (spread(*a, 0.95), spread(*b, 0.95)))
    n = planned.required_n(delta, 0.95)
    assert 6000 < n < 7000, n  # (1.96 + 0.84)^2 (43.4^2 + 45.6^2) / 2.17^2 = 6,570
    reps = 60
    detected = sum(difference(sample(rng, *a, n), sample(rng, *b, n), "p95").significant for _ in range(reps))
    assert 0.64 <= detected / reps <= 0.96, (n, detected)


def test_error_rates_false_positive_rate():
    """Two endpoints failing 1% of 5,000 requests each, 200 repetitions: Newcombe's interval flags
    about 5% (Binomial(200, 0.05): 10 +- 3 sd = 19)."""
    rng = random.Random(18)
    reps, n, p = 200, 5000, 0.01
    significant = 0
    for _ in range(reps):
        fa = sum(rng.random() < p for _ in range(n))
        fb = sum(rng.random() < p for _ in range(n))
        significant += st.proportion_difference(fa, n, fb, n).significant
    assert 2 <= significant <= 19, significant


@pytest.mark.parametrize(
    "cand, cand_n, base, base_n, low, high",
    [  # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10 (hybrid score)
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_difference_of_rates_is_newcombes_interval(monkeypatch, cand, cand_n, base, base_n, low, high):
    monkeypatch.setattr(st, "MIN_REQUESTS", 0)  # the published examples are small
    d = st.proportion_difference(base, base_n, cand, cand_n)
    assert d.difference == pytest.approx(cand / cand_n - base / base_n)
    assert (round(d.low, 4), round(d.high, 4)) == (low, high)


def test_wilson_interval():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263, Wilson score 0.2553 to 0.3662
    low, high = st.wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert st.wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "x, df, p",
    [  # scipy.stats.chi2.sf(x, df), scipy 1.16
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (100, 1, 1.5239706048320995e-23),
        (0.5, 4, 0.9735009788392561),
        (30, 10, 0.000856641210775301),
        (0.001, 1, 0.9747728793699604),
        (2.5, 7, 0.9270970650134738),
        (150.2, 120, 0.03226088803110231),
        (1000, 3, 1.7994208765314067e-216),
    ],
)
def test_chi_square_survival_function(x, df, p):
    assert st.chi_square_sf(x, df) == pytest.approx(p, rel=1e-9)


def test_chi_square_goodness_of_fit():
    statistic, df, p = st.chi_square([700, 300], [0.7, 0.3])
    assert (statistic, df, p) == (0.0, 1, 1.0)
    statistic, df, p = st.chi_square([600, 400], [7, 3])  # shares are normalised
    assert df == 1 and statistic == pytest.approx(100**2 / 700 + 100**2 / 300) and p < 1e-9
    assert st.chi_square([10, 1], [1.0, 0.0])[2] == 0.0  # a variant expected to get nothing got a request


def test_too_few_requests_give_no_interval():
    assert st.min_requests_for(0.99, 0.95) == 382  # z^2 * 99 = 380.3, + 1
    assert st.min_requests_for(0.5, 0.95) == st.MIN_REQUESTS
    h = Histogram()
    for v in range(1, 301):
        h.record(float(v))
    p99 = st.quantile(h, 0.99)
    assert p99.se is None and p99.value == pytest.approx(297, rel=0.01)
    d = st.difference(p99, st.quantile(h, 0.99))
    assert (d.low, d.high, d.significant, d.detectable) == (None, None, False, None)
    assert st.quantile(h, 0.5).se is not None


def test_a_quantile_is_placed_inside_its_bucket_with_the_placements_variance():
    """The j-th of c values in a bucket sits j/(c+1) of the way across it (narrowed to the exact min
    and max), with the variance of the j-th of c uniform order statistics; constant latencies are
    known exactly (min = max), so equal ones are no difference and 20 vs 25 ms is one."""
    h = Histogram()
    shared = (19.8, 19.9, 20.0)
    assert len({bucket_index(v) for v in shared}) == 1
    for v in (10.0, *shared, 30.0):
        h.record(v)
    (value, variance), (last, zero) = st.at_ranks(h, [3, 5])
    upper = st._GAMMA ** bucket_index(20.0)
    width = upper - upper / st._GAMMA
    assert value == pytest.approx(upper - width + width * 2 / 4)  # j=2 of c=3
    assert variance == pytest.approx(width**2 * 2 * 2 / (16 * 5))
    assert (last, zero) == (30.0, 0.0)  # the max bucket narrowed to the max itself

    same_a, same_b, other = Histogram(), Histogram(), Histogram()
    for _ in range(1000):
        same_a.record(20.0)
        same_b.record(20.0)
        other.record(25.0)
    d = st.difference(st.quantile(same_a, 0.95), st.quantile(same_b, 0.95))
    assert (d.difference, d.significant) == (0.0, False)
    d = st.difference(st.quantile(same_a, 0.95), st.quantile(other, 0.95))
    assert d.significant and d.difference == pytest.approx(5.0)
