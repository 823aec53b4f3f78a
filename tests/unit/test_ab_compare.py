"""The A/B comparison's rows and verdicts (smload.results.compare), its regression gates
(smload.results.gates), the traffic split check (smload.results.split) and checks that name a
comparison (smload.results.checks), on samples drawn from known distributions with a seeded
generator."""

import math
import random

import pytest

from smload.measure.histogram import Histogram
from smload.results import checks, compare, gates, split
from smload.usage import UsageError

ROW_KEYS = {
    "baseline",
    "candidate",
    "metric",
    "baseline_value",
    "candidate_value",
    "difference",
    "ci_low",
    "ci_high",
    "significant",
}  # the report.json contract (DESIGN.md)


def histogram(rng, median_ms, n, sigma=0.47):
    h = Histogram()
    for _ in range(n):
        h.record(rng.lognormvariate(math.log(median_ms), sigma))
    return h


def sample(label, median_ms, n, failures=0, seed=1, **other_kinds):
    rng = random.Random(seed)
    timings = {"latency": histogram(rng, median_ms, n)}
    timings.update({kind: histogram(rng, m, n) for kind, m in other_kinds.items()})
    return compare.Sample(label, n, failures, timings, label.rsplit("/", 1)[-1])


def rows_by_metric(rows):
    return {row.metric: row for row in rows}


def test_rows_hold_the_contract_and_every_kind_of_timing():
    a = sample("ep/a", 20, 5000, failures=10, seed=1, ttft=100)
    b = sample("ep/b", 22, 5000, failures=60, seed=2, ttft=100)
    rows = rows_by_metric(compare.compare(a, b))
    assert list(rows) == [
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "mean_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "ttft_p99_ms",
        "ttft_mean_ms",
        "error_rate",
    ]
    for row in rows.values():
        d = row.as_dict()
        assert ROW_KEYS <= set(d)
        assert (d["baseline"], d["candidate"]) == ("ep/a", "ep/b")
        assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    assert rows["p50_ms"].significant and rows["p50_ms"].difference == pytest.approx(2.0, abs=0.8)
    assert not rows["ttft_p50_ms"].significant  # the same distribution for both: no difference
    rate = rows["error_rate"].as_dict()
    assert (rate["baseline_value"], rate["candidate_value"], rate["unit"]) == (0.002, 0.012, "fraction")
    assert rate["significant"] and rate["ci_low"] > 0


def test_verdicts_say_what_is_known_and_what_is_not():
    a, b = sample("ep/a", 20, 5000, seed=3), sample("ep/b", 22, 5000, seed=4)
    rows = rows_by_metric(compare.compare(a, b))
    p50 = rows["p50_ms"]
    assert p50.verdict().startswith("ep/b is slower than ep/a at p50 by ")
    assert "95% CI" in p50.verdict() and p50.short() == "slower"
    assert compare.headline(list(rows.values())).startswith("ep/b is slower than ep/a at p50, p95")

    same = rows_by_metric(compare.compare(sample("ep/a", 20, 800, seed=5), sample("ep/b", 20, 800, seed=6)))
    p95 = same["p95_ms"]
    assert not p95.significant
    assert p95.verdict().startswith("no detectable difference at p95 at this sample size")
    assert f"the smallest detectable difference is {p95.detectable:.2f} ms (80% power)" in p95.verdict()
    assert "detecting a 5% difference" in p95.verdict() and p95.required_n > 800
    assert same["error_rate"].verdict().startswith("no detectable difference at the error rate")

    few = rows_by_metric(compare.compare(sample("ep/a", 20, 300, seed=7), sample("ep/b", 20, 300, seed=8)))
    assert few["p99_ms"].ci_low is None and not few["p99_ms"].significant
    assert few["p99_ms"].verdict().startswith("too few requests to compare p99: 300 and 300")
    assert few["p50_ms"].ci_low is not None


def test_pairs_against_a_baseline_or_every_pair():
    a, b, c = (compare.Sample(f"ep/{t}", 1, 0, {}, t) for t in "abc")
    assert [(x.target, y.target) for x, y in compare.pairs([c, a, b])] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [(x.target, y.target) for x, y in compare.pairs([c, a, b], "b")] == [("b", "a"), ("b", "c")]


@pytest.mark.parametrize(
    "text, metric, name, limit, relative",
    [
        ("p95<5%", "p95_ms", None, 0.05, True),
        (" p99 <= 20ms", "p99_ms", None, 20.0, False),
        ("p99.9<0.5s", "p99.9_ms", None, 500.0, False),
        ("mean<3%", "mean_ms", None, 0.03, True),
        ("avg<3%", "mean_ms", None, 0.03, True),
        ("error_rate<0.1pp", "error_rate", None, 0.001, False),
        ("ttft_p95<10%", "ttft_p95_ms", None, 0.10, True),
        ("p95[ep/variant a]<5%", "p95_ms", "ep/variant a", 0.05, True),
    ],
)
def test_gates_parse(text, metric, name, limit, relative):
    gate = gates.parse(text)
    assert (gate.metric, gate.name, gate.relative) == (metric, name, relative)
    assert gate.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "expected METRIC<LIMIT"),
        ("p95<5", "p95 needs a unit: % of the baseline, ms or s"),
        ("p95>5%", "a regression gate is an upper limit"),
        ("p95 5%", "expected '<' after the metric"),
        ("error_rate<0.1%", "error_rate regressions are in percentage points"),
        ("latency<5%", "unknown metric 'latency'"),
        ("p100<5%", "percentile p100 is out of range"),
        ("p95[]<5%", "empty request name"),
        ("p95<%", "expected a number after '<'"),
        ("p95<5 furlongs", "unknown unit 'furlongs'"),
    ],
)
def test_malformed_gates_are_refused_naming_the_option(text, problem):
    with pytest.raises(UsageError) as err:
        gates.parse(text)
    assert err.value.option == "--max-regression" and problem in err.value.message
    assert "\n" not in str(err.value)


def test_a_gate_fails_on_a_significant_regression_beyond_its_allowance_only():
    base = sample("ep/a", 20, 5000, seed=9)
    worse = sample("ep/a", 23, 5000, seed=10)  # 15% slower at every quantile
    noise = sample("ep/a", 20, 5000, seed=11)
    limits = [
        gates.parse("p95<5%"),
        gates.parse("p95<20%"),
        gates.parse("error_rate<0.1pp"),
    ]
    results = gates.evaluate(limits, compare.compare(base, worse, statistics=("p95",)))
    assert [r.regressed for r in results] == [True, False, False]
    assert results[0].note.startswith("regression: +") and results[1].note.startswith(
        "significantly worse, within"
    )
    assert not any(r.regressed for r in gates.evaluate(limits, compare.compare(base, noise)))
    few = compare.compare(sample("ep/a", 20, 100, seed=12), sample("ep/a", 20, 100, seed=13))
    (result,) = gates.evaluate([gates.parse("p99<50%")], few)
    assert result.regressed and result.note == "too few requests to compare"
    with pytest.raises(UsageError, match="neither report has ttft_p95_ms"):
        gates.evaluate([gates.parse("ttft_p95<5%")], few)
    with pytest.raises(UsageError, match="for 'ep/typo'"):
        gates.evaluate([gates.parse("p95[ep/typo]<5%")], few)


def test_a_noisy_difference_beyond_the_allowance_is_not_a_regression():
    """200 requests each at 20 ms: a point estimate 10% apart is not significant, so p95<5% holds."""
    rng = random.Random(14)
    for _ in range(50):
        base, cand = sample("ep/a", 20, 200, seed=rng.random()), sample("ep/a", 20, 200, seed=rng.random())
        rows = compare.compare(base, cand, statistics=("p95",))
        p95 = rows[0]
        if p95.relative > 0.05 and not p95.significant:
            (result,) = gates.evaluate([gates.parse("p95<5%")], rows)
            assert not result.regressed and "not significant" in result.note
            return
    pytest.fail("no noisy pair above 5% in 50 draws")


# --- the traffic split ------------------------------------------------------------------------


def multinomial(rng, n, shares):
    counts = dict.fromkeys(shares, 0)
    names, weights = list(shares), list(shares.values())
    for name in rng.choices(names, weights, k=n):
        counts[name] += 1
    return counts


def test_a_70_30_split_is_confirmed_and_a_60_40_one_flagged():
    rng = random.Random(20)
    expected = split.parse_expected("variant-a=0.7,variant-b=0.3")
    good = split.check(
        multinomial(rng, 10_000, {"variant-a": 0.7, "variant-b": 0.3}), expected, "--expected-split"
    )
    assert good.ok and good.p_value > split.ALPHA
    assert (
        good.describe().startswith("traffic split OK: variant-a ") and "(expected 70.0%)" in good.describe()
    )
    bad = split.check(
        multinomial(rng, 2_000, {"variant-a": 0.6, "variant-b": 0.4}), expected, "--expected-split"
    )
    assert bad.ok is False and bad.p_value < 1e-9
    assert bad.describe().startswith("traffic split WARNING: the observed split is not the expected one")
    d = bad.as_dict()
    assert set(d) >= {"expected", "observed", "p_value", "ok"}
    assert d["expected"] == {"variant-a": 0.7, "variant-b": 0.3}
    assert sum(d["observed"].values()) == pytest.approx(1.0)


def test_split_false_alarms_are_rare():
    """1,000 correctly routed runs of 2,000 requests: flagged at p < 0.001, about one in a thousand."""
    rng = random.Random(21)
    shares = {"a": 0.7, "b": 0.2, "c": 0.1}
    flagged = sum(split.check(multinomial(rng, 2000, shares), shares, "x").ok is False for _ in range(1000))
    assert flagged <= 5


def test_split_edge_cases():
    assert split.check({"a": 3, "b": 1}, {"a": 0.5, "b": 0.5}, "x").ok is None  # expected counts < 5
    unexpected = split.check({"a": 500, "b": 500, "c": 1}, {"a": 1, "b": 1}, "x")
    assert unexpected.ok is False and unexpected.p_value == 0.0 and unexpected.counts["c"] == 1
    assert split.parse_expected("a=70%, b=30%") == {"a": 0.7, "b": 0.3}
    assert split.parse_expected("a=2,b=1,c=1") == {"a": 0.5, "b": 0.25, "c": 0.25}


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a=0.7", "at least two"),
        ("a=0.7,b", "is not VARIANT=WEIGHT"),
        ("a=0.7,a=0.3", "given twice"),
        ("a=0,b=0", "not all 0"),
        ("a=-1,b=2", "is not VARIANT=WEIGHT"),
    ],
)
def test_bad_expected_splits(text, problem):
    with pytest.raises(ValueError, match=problem):
        split.parse_expected(text)


# --- checks that name a comparison ------------------------------------------------------------


def observed(median_ms, n, failures=0, seed=1):
    rng = random.Random(seed)
    return checks.Observed(histogram(rng, median_ms, n), n, failures, 10.0)


def test_comparison_checks_parse():
    check = checks.parse("p95[ep/b] - p95[ep/a] < 10ms")
    assert (check.metric, check.name, check.minus, check.op, check.threshold) == (
        "p95",
        "ep/b",
        "ep/a",
        "<",
        10.0,
    )
    assert check.describe() == "p95[ep/b] - p95[ep/a] < 10 ms"
    assert checks.parse("avg[b]-avg[a] > -2 ms").threshold == -2.0
    rate = checks.parse("error_rate[b]-error_rate[a]<0.5pp")
    assert (
        rate.threshold == pytest.approx(0.005) and rate.describe() == "error_rate[b] - error_rate[a] < 0.5 pp"
    )
    assert checks.parse("error_rate[b]-error_rate[a]<0.5%").threshold == pytest.approx(0.005)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("p95[b]-p99[a]<10ms", "subtracts the same metric"),
        ("p95-p95[a]<10ms", "names both sides"),
        ("p95[b]-p95<10ms", "subtracts the same metric of another name"),
        ("rps[b]-rps[a]<10", "has no confidence interval"),
        ("max[b]-max[a]<10ms", "has no confidence interval"),
        ("p95[b]-p95[a<10ms", "no closing"),
        ("p95[b]-p95[a]<10", "give its unit"),
    ],
)
def test_malformed_comparison_checks(text, problem):
    with pytest.raises(UsageError, match=problem):
        checks.parse(text)


def test_a_comparison_check_fails_only_when_broken_and_significant():
    named = {
        "b": observed(22, 5000, failures=50, seed=1),
        "a": observed(20, 5000, failures=5, seed=2),
        "a2": observed(20, 5000, seed=3),
        "few": observed(20, 10, seed=4),
    }
    results = checks.evaluate(
        checks.parse_all(
            [
                "p50[b]-p50[a]<1ms",  # +2 ms, significant: fails
                "p50[b]-p50[a]<5ms",  # within: passes
                "p50[a2]-p50[a]<-0.3ms",  # the same distribution: breaks a limit below 0, but only by noise: passes
                "error_rate[b]-error_rate[a]<0.5pp",  # +0.9 pp, significant: fails
                "p50[few]-p50[a]<1ms",  # too few requests: fails
                "p50[typo]-p50[a]<1ms",
            ]
        ),
        named.get,
    )
    assert [r.passed for r in results] == [False, True, True, False, False, False]
    assert results[0].note.endswith(": significant") and results[0].interval[0] > 1
    assert results[0].as_dict()["ci_low"] == results[0].interval[0]
    assert results[2].value > -0.3 and results[2].note.endswith("beyond the limit, but not significant")
    assert results[4].note == "too few requests for a confidence interval"
    assert results[5].note == "no request named 'typo'"


def test_the_headline_names_a_difference_in_any_kind_of_timing():
    """An LLM-like pair: the same latency, time to first token 30% longer: the pair is not "no
    detectable difference"."""
    a = sample("ep/a", 20, 3000, seed=30, ttft=100)
    b = sample("ep/b", 20, 3000, seed=31, ttft=130)
    line = compare.headline(compare.compare(a, b, statistics=("p50",)))
    assert line.startswith("ep/b is slower than ep/a at time to first token p50 (ttft_p50 +"), line
