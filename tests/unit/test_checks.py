"""The check language: parsing, error messages, evaluation over a histogram and counts."""

import pytest

from smload.measure.histogram import Histogram
from smload.results.checks import (
    Observed,
    evaluate,
    exit_code,
    format_value,
    parse,
    parse_all,
    split_values,
    table,
)
from smload.usage import UsageError


def hist(*values_ms):
    h = Histogram()
    for v in values_ms:
        h.record(v)
    return h


@pytest.mark.parametrize(
    "text, metric, name, op, threshold",
    [
        ("p95<300ms", "p95", None, "<", 300.0),
        ("p50 <= 0.25s", "p50", None, "<=", 250.0),
        ("p99.9>1ms", "p99.9", None, ">", 1.0),
        ("P99 >= 2 s", "p99", None, ">=", 2000.0),
        ("p75<10ms", "p75", None, "<", 10.0),
        ("avg<20ms", "avg", None, "<", 20.0),
        ("mean<20ms", "avg", None, "<", 20.0),
        ("max<=1.5s", "max", None, "<=", 1500.0),
        ("error_rate<1%", "error_rate", None, "<", 0.01),
        ("error_rate <= 0.5 %", "error_rate", None, "<=", 0.005),
        ("rps>=100", "rps", None, ">=", 100.0),
        ("rps > 12.5/s", "rps", None, ">", 12.5),
        ("p99[ab-test/variant-a]<200ms", "p99", "ab-test/variant-a", "<", 200.0),
        (
            "p95 [My request / with spaces, and commas] < 1s",
            "p95",
            "My request / with spaces, and commas",
            "<",
            1000.0,
        ),
        ("error_rate[ab-test/variant-b]<5%", "error_rate", "ab-test/variant-b", "<", 0.05),
        ("rps[x]>=1", "rps", "x", ">=", 1.0),
    ],
)
def test_parses_every_metric_kind_and_comparison(text, metric, name, op, threshold):
    check = parse(text)
    assert (check.metric, check.name, check.op) == (metric, name, op)
    assert check.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty check"),
        ("p95", "expected a comparison"),
        ("p95=300ms", "found '='"),
        ("p95==300ms", "found '=='"),
        ("p95!=300ms", "found '!='"),
        ("p95<", "expected a number"),
        ("p95<fast", "expected a number"),
        ("p95<300", "give its unit, ms or s"),
        ("p95<300us", "unknown latency unit 'us'"),
        ("p100<1s", "out of range"),
        ("p0<1s", "out of range"),
        ("latency<1s", "unknown metric 'latency'"),
        ("<1s", "must start with a metric"),
        ("error_rate<1", "write it with %"),
        ("error_rate<1ms", "takes a percentage"),
        ("error_rate<101%", "cannot exceed 100%"),
        ("rps>=100ms", "requests per second"),
        ("p99[ab-test<1s", "no closing ']'"),
        ("p99[]<1s", "empty request name"),
        ("p99[ a ]x<1s", "expected a comparison"),
        ("p99<1s extra", "unknown latency unit 's extra'"),
    ],
)
def test_bad_expressions_name_the_option_and_the_problem(text, fragment):
    with pytest.raises(UsageError) as caught:
        parse(text)
    error = caught.value
    assert error.option == "--check"
    assert fragment in error.message
    assert repr(text.strip()) in error.message  # says which expression
    assert "\n" not in str(error)  # one line


def test_the_option_name_can_be_another_one():
    with pytest.raises(UsageError) as caught:
        parse("p99<1", option="--slo")
    assert str(caught.value).startswith("--slo: 'p99<1':")


def test_split_values_separators_and_brackets():
    assert split_values(None) == []
    assert split_values("") == []
    assert split_values("p95<300ms") == ["p95<300ms"]
    assert split_values("p95<300ms; error_rate<1%,rps>=10") == ["p95<300ms", "error_rate<1%", "rps>=10"]
    assert split_values(["a<1ms;", " b<2ms ", "p9[x;y,z]<1s;rps>1"]) == [
        "a<1ms",
        "b<2ms",
        "p9[x;y,z]<1s",
        "rps>1",
    ]
    assert [c.name for c in parse_all(["p99[a, b]<1s; rps>1"])] == ["a, b", None]


def observed(values=(), requests=None, failures=0, rps=0.0):
    h = hist(*values)
    return Observed(h, h.count if requests is None else requests, failures, rps)


def test_evaluation_of_each_metric_and_comparison():
    all_requests = observed([10.0] * 90 + [100.0] * 9 + [1000.0], failures=2, rps=50.0)
    checks = parse_all(
        "p50<=10.1ms; p90<11ms; p95>=99ms; p99<99ms; p99.9>999ms; avg<20ms; max<=1s; max<1s;"
        "error_rate<2%; error_rate<=2%; rps>=50; rps>50"
    )
    results = evaluate(checks, lambda name: all_requests)
    verdicts = {r.check.text: r.passed for r in results}
    assert verdicts == {
        "p50<=10.1ms": True,  # 10 ms within the histogram's 1%
        "p90<11ms": True,
        "p95>=99ms": True,
        "p99<99ms": False,  # p99 is 100 ms
        "p99.9>999ms": True,
        "avg<20ms": False,  # (900 + 900 + 1000) / 100 = 28 ms
        "max<=1s": True,
        "max<1s": False,
        "error_rate<2%": False,  # exactly 2%
        "error_rate<=2%": True,
        "rps>=50": True,
        "rps>50": False,
    }
    avg = next(r for r in results if r.check.metric == "avg")
    assert avg.value == pytest.approx(28.0)


def test_named_checks_select_their_requests_and_unknown_names_fail():
    by_name = {
        None: observed([5.0, 500.0]),
        "ab-test/variant-a": observed([5.0]),
        "empty": observed([], requests=0),
    }
    results = evaluate(
        parse_all("max[ab-test/variant-a]<10ms; max<10ms; p50[typo]<1s; error_rate[empty]<1%"), by_name.get
    )
    assert [r.passed for r in results] == [True, False, False, False]
    assert results[2].note == "no request named 'typo'" and results[2].value is None
    assert results[3].note == "no requests to measure"


def test_table_shows_values_verdicts_and_a_summary():
    results = evaluate(
        parse_all("p95<300ms; error_rate<1%; rps>=100"),
        lambda name: observed([212.44], failures=0, rps=153.21),
    )
    lines = table(results)
    assert lines[0].split() == ["Check", "Value", "Result"]
    assert "p95 < 300 ms" in lines[2] and "212" in lines[2] and lines[2].endswith("PASS")
    assert "rps >= 100/s" in lines[4] and "153.2/s" in lines[4]
    assert lines[-1] == "3 of 3 checks passed"
    failing = table(evaluate(parse_all("rps>=1000"), lambda name: observed([1.0], rps=3.0)))
    assert failing[2].endswith("FAIL") and failing[-1] == "0 of 1 checks passed, 1 failed"


def test_describe_keeps_the_unit_written():
    assert parse("max[a b]<=1.5s").describe() == "max[a b] <= 1.5 s"
    assert parse("p99<1500ms").describe() == "p99 < 1500 ms"
    assert parse("error_rate<0.5%").describe() == "error_rate < 0.5 %"
    assert parse("rps>=100").describe() == "rps >= 100/s"


def test_format_value():
    assert format_value("p99", 212.44) == "212.4 ms"
    assert format_value("max", 12_345.0) == "12.3 s"
    assert format_value("error_rate", 0.0231) == "2.31 %"
    assert format_value("rps", 153.0) == "153/s"
    assert format_value("p50", None) == "n/a"


def test_exit_code():
    passed = evaluate(parse_all("rps>=1"), lambda name: observed([1.0], rps=2.0))
    failed = evaluate(parse_all("rps>=10"), lambda name: observed([1.0], rps=2.0))
    assert exit_code(failed, None, False) == 3
    assert exit_code(failed, 2, False) == 3 and exit_code(failed, 4, False) == 4  # never lowered
    assert exit_code(passed, None, False) == 0  # failed requests do not matter: the checks decide
    assert exit_code(passed, None, True) is None  # an exception in user code: Locust's own exit code
    assert exit_code(passed, 2, False) == 2
