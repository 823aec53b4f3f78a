"""smload.load as pure code: arrival processes, rate profiles, the split over workers, the options
and the worker's scheduler (gevent, no network); the open-loop checks' grammar."""

from __future__ import annotations

import argparse
import statistics
import time

import gevent
import pytest

from smload.load import arrivals, open_loop, profile
from smload.load.options import GROUP
from smload.measure.histogram import Histogram
from smload.results import checks
from smload.usage import UsageError


# --- arrival processes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cv"), [("poisson", 1.0), ("constant", 0.0), ("gamma:2", 2.0), ("gamma:0.5", 0.5)]
)
def test_gaps_have_the_mean_and_cv_of_their_process(text, cv):
    process = arrivals.parse(text)
    gaps = process.gaps(seed=1)
    drawn = [gaps.next(250.0) for _ in range(40_000)]
    mean = statistics.fmean(drawn)
    assert mean == pytest.approx(1 / 250, rel=0.03)
    assert statistics.pstdev(drawn) / mean == pytest.approx(cv, abs=0.05)


def test_a_seed_repeats_the_stream_and_another_does_not():
    process = arrivals.parse("poisson")
    first, again, other = process.gaps("7:0"), process.gaps("7:0"), process.gaps("7:1")
    a = [first.next(100) for _ in range(5)]
    assert a == [again.next(100) for _ in range(5)]
    assert a != [other.next(100) for _ in range(5)]


@pytest.mark.parametrize("text", ["poison", "gamma", "gamma:x", "gamma:0", "gamma:50", "uniform"])
def test_a_wrong_process_says_what_is_accepted(text):
    with pytest.raises(ValueError, match="poisson|coefficient"):
        arrivals.parse(text)


# --- profiles ----------------------------------------------------------------------------------------------
def test_stages_step_and_ramp():
    p = profile.from_mapping(
        {
            "stages": [
                {"duration": "10s", "rate": 50},
                {"duration": "1m", "rate": 350, "ramp": "linear"},
                {"duration": 5, "rate": 0},
            ]
        }
    )
    assert p.duration_s == 75
    assert p.rate(0) == 50 and p.rate(9.9) == 50
    assert (
        p.rate(10) == 50
        and p.rate(40) == pytest.approx(200)
        and p.rate(69.99) == pytest.approx(350, rel=1e-3)
    )
    assert p.rate(70) == 0
    assert p.rate(75) is None


def test_a_per_minute_series_with_a_time_scale(tmp_path):
    p = profile.from_mapping({"per_minute": [600, 1200], "time_scale": 60})
    assert p.duration_s == 2  # each minute replayed in a second
    assert p.rate(0.5) == pytest.approx(600)  # 600/min at 60x is 600 req/s
    assert p.rate(1.5) == pytest.approx(1200)
    csv = tmp_path / "invocations.csv"
    csv.write_text("Timestamp,Invocations\n2025-01-01T00:00:00Z,120\n2025-01-01T00:01:00Z,240\n")
    p = profile.from_mapping({"per_minute_file": "invocations.csv"}, tmp_path)
    assert (p.duration_s, p.rate(1), p.rate(61)) == (120, 2, 4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": []}, "non-empty"),
        ({"stages": [{"duration": "10x", "rate": 1}]}, "not a duration"),
        ({"stages": [{"duration": "10s", "rate": -1}]}, "between 0"),
        ({"stages": [{"duration": "10s", "rate": 1, "ramp": "cubic"}]}, "step or linear"),
        ({"stage": []}, "unknown key"),
        ({"per_minute": [1], "time_scale": 0}, "time_scale"),
        ([1, 2], "mapping"),
    ],
)
def test_a_bad_profile_names_its_problem(data, message):
    with pytest.raises(ValueError, match=message):
        profile.from_mapping(data)


def _options(**values):
    defaults = {
        "arrival_rate": None,
        "arrival": "poisson",
        "max_in_flight": 1000,
        "rate_profile": None,
        "arrival_seed": None,
    }
    return argparse.Namespace(**(defaults | values))


def test_options_build_and_refuse(tmp_path):
    settings = GROUP.parse(_options(arrival_rate="250", arrival="gamma:2", max_in_flight="64"))
    assert (
        settings.enabled
        and settings.rate == 250
        and settings.process.cv == 2
        and settings.max_in_flight == 64
    )
    assert not GROUP.parse(_options()).enabled
    path = tmp_path / "p.yaml"
    path.write_text("stages:\n  - {duration: 2s, rate: 10}\n")
    assert GROUP.parse(_options(rate_profile=str(path))).rate_at(1) == 10
    with pytest.raises(UsageError, match="--rate-profile: give either"):
        GROUP.parse(_options(rate_profile=str(path), arrival_rate="5"))
    with pytest.raises(UsageError, match="--rate-profile: cannot read"):
        GROUP.parse(_options(rate_profile=str(tmp_path / "missing.yaml")))
    with pytest.raises(UsageError, match="--arrival-rate"):
        GROUP.parse(_options(arrival_rate="0"))
    with pytest.raises(UsageError, match="--arrival"):
        GROUP.parse(_options(arrival_rate="5", arrival="bursty"))


# --- the split and the scheduler ------------------------------------------------------------------------------
def test_the_rate_is_split_in_equal_slots_from_one_instant():
    shares = open_loop.split(900.0, ["w1", "w2", "w3"], since=100.0)
    assert [s.slot for s in shares.values()] == [0, 1, 2]
    assert all(s.own_rate == 300 and s.since == 100 and s.of == 3 for s in shares.values())


def _executors(scheduler, n, served):
    def executor():
        while True:
            served.append(scheduler.wait())
            gevent.sleep(0.002)  # the request

    return [gevent.spawn(executor) for _ in range(n)]


def test_the_scheduler_hands_out_constant_arrivals_on_the_schedule():
    counted = []
    scheduler = open_loop.Scheduler(arrivals.parse("constant"), None, lambda a, d: counted.append((a, d)))
    served: list[float] = []
    pool = _executors(scheduler, 4, served)
    gevent.sleep(0)
    since = time.time() + 0.05
    scheduler.assign(
        open_loop.Share(400.0, 1, 2, since)
    )  # slot 1 of 2 at 400 in total: 200 here, offset 2.5 ms
    gevent.sleep(0.55)
    scheduler.stop()
    gevent.killall(pool)
    assert 95 <= len(served) <= 101
    assert served[:3] == pytest.approx([since + 0.0025, since + 0.0075, since + 0.0125])
    assert sum(a for a, _d in counted) == scheduler.scheduled == len(served) and scheduler.dropped == 0


def test_an_arrival_without_an_idle_executor_is_dropped_and_counted():
    counts = {"arrivals": 0, "dropped": 0}

    def count(a, d):
        counts["arrivals"] += a
        counts["dropped"] += d

    scheduler = open_loop.Scheduler(arrivals.parse("poisson"), 3, count)
    served: list[float] = []

    def slow_executor():
        while True:
            served.append(scheduler.wait())
            gevent.sleep(0.05)  # far slower than the arrivals

    pool = [gevent.spawn(slow_executor) for _ in range(2)]
    gevent.sleep(0)
    scheduler.assign(open_loop.Share(500.0, 0, 1, time.time()))
    gevent.sleep(0.3)
    scheduler.stop()
    gevent.killall(pool)
    assert counts["dropped"] > 50
    assert counts["arrivals"] == scheduler.scheduled == len(served) + counts["dropped"]


def test_an_arrival_handed_to_an_executor_killed_before_it_starts_counts_as_dropped():
    counts = []
    scheduler = open_loop.Scheduler(arrivals.parse("constant"), None, lambda a, d: counts.append((a, d)))
    executor = gevent.spawn(scheduler.wait)
    gevent.sleep(0)
    executor.kill(block=False)  # Locust stops it: the kill is on its way when ...
    scheduler._dispatch(time.time())  # ... the arrival is handed to it
    gevent.sleep(0.01)
    assert executor.dead
    assert counts == [(1, 0), (0, 1)] and scheduler.dropped == 1


# --- the open-loop checks ---------------------------------------------------------------------------------------
def test_open_loop_checks_parse_and_evaluate():
    parsed = checks.parse_all(
        "achieved_rate>=495; dropped<0.1%; dropped<=3; schedule_lag_p99<2ms; schedule_lag_p99.9[ep/v1]<0.01s"
    )
    assert [(c.metric, c.threshold) for c in parsed] == [
        ("achieved_rate", 495),
        ("dropped", 0.001),
        ("dropped", 3),
        ("schedule_lag_p99", 2),
        ("schedule_lag_p99.9", 10),
    ]
    lag = Histogram()
    for ms in [0.1] * 98 + [1.5, 30]:
        lag.record(ms)
    observed = checks.Observed(
        Histogram(), 100, 0, 99.0, {"schedule_lag": lag}, open_loop=checks.OpenLoop(498.0, 1000, 3)
    )
    results = checks.evaluate(parsed[:4], lambda _name: observed)
    assert [r.passed for r in results] == [True, False, True, True]
    assert results[1].value == pytest.approx(0.003)
    assert checks.table(results)[3].split()[-2:] == ["%", "FAIL"]
    closed = checks.evaluate(parsed[:1], lambda _name: checks.Observed(Histogram(), 5, 0, 1.0))
    assert not closed[0].passed and "not an open-loop test" in closed[0].note


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("achieved_rate[ep/v1]>5", "all requests together"),
        ("dropped<5ms", "a count"),
        ("schedule_lag_p99<2", "give its unit"),
        ("schedule_lag_p100<2ms", "out of range"),
    ],
)
def test_wrong_open_loop_checks_say_why(text, message):
    with pytest.raises(UsageError, match=message):
        checks.parse(text)
