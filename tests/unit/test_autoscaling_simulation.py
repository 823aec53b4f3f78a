"""The simulation of an endpoint under a policy (smload.calibration.simulation) against what its
model says by hand, and the strategy built on it (capacity from calibration.json, ranking, the
recommendation's reason). The emulator comparison is tests/integration/test_emulator_autoscaling.py."""

import pytest
from testkit.endpoint_model import ClosedLoopEndpoint, run

from smload import scaling
from smload.calibration import simulation, strategy
from smload.calibration.search import Instances, Search, SearchRules, summarize
from smload.results.checks import parse_all
from smload.usage import UsageError

CAP = simulation.Capacity(
    "AllTraffic", 160.0, 4.0, simulation.Service(((0.5, 25.0), (0.9, 25.0), (0.95, 25.0), (0.99, 25.0)), 25.0)
)
INVOCATIONS = scaling.parse_policies(
    {
        "TargetValue": 7680.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.INVOCATIONS_PER_INSTANCE},
    },
    "x",
    "invocations",
)
CONCURRENCY = scaling.parse_policies(
    {
        "TargetValue": 3.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.CONCURRENCY_PER_MODEL},
    },
    "x",
    "concurrency",
)


def constant(rate, seconds):
    return lambda t: rate if t < seconds else None


def test_below_capacity_nothing_queues_and_latency_is_the_service_time():
    result = simulation.simulate(
        CAP, constant(80.0, 600), 600, INVOCATIONS, scaling.Limits(1, 4, 60), 1, arrivals="constant"
    )
    assert result.summary["errors"] == 0 and result.summary["requests"] == 48_000
    assert all(
        r["p50_ms"] == pytest.approx(25.0, abs=0.5) and r["p99_ms"] == pytest.approx(25.0, abs=0.5)
        for r in result.rows
    )
    assert all(r["concurrency"] == pytest.approx(2.0) for r in result.rows)  # Little: 80 req/s x 25 ms
    assert result.summary["instance_hours"] == pytest.approx(600 / 3600, abs=1e-4)


def test_poisson_arrivals_wait_for_a_slot_now_and_then():
    poisson = simulation.simulate(CAP, constant(140.0, 300), 300, INVOCATIONS, scaling.Limits(1, 1, 60), 1)
    steady = poisson.rows[-1]
    assert steady["p50_ms"] < 60 and steady["p99_ms"] > 40  # M/D/4 at 88%: a tail of slot waits, no backlog
    assert poisson.summary["errors"] == 0


def test_overload_fills_the_queue_then_fails_the_excess():
    # 240 req/s on 160 for 300 s, no scaling (max 1): the queue of 100 fills, then 80 req/s fail
    result = simulation.simulate(
        CAP, constant(240.0, 300), 300, INVOCATIONS, scaling.Limits(1, 1, 60), 1, arrivals="constant"
    )
    assert result.summary["errors"] == 80 * 300 - 100
    assert result.rows[-1]["p50_ms"] == pytest.approx(25 + 100 / 160 * 1000, abs=2)  # a full queue ahead


def test_a_compressed_run_keeps_real_rates_and_policy_timing():
    # the emulator's time_scale 60: 300 policy seconds of overload last 5 real seconds
    result = simulation.simulate(
        CAP,
        constant(240.0, 300),
        300,
        INVOCATIONS,
        scaling.Limits(1, 1, 60),
        1,
        arrivals="constant",
        time_scale=60,
    )
    assert result.summary["errors"] == 80 * 5 - 100
    assert result.summary["instance_hours"] == pytest.approx(300 / 3600, abs=1e-4)  # still policy time


def test_the_simulated_scaler_follows_the_step_as_the_alarm_arithmetic_says():
    profile = lambda t: None if t >= 1860 else (80.0 if t < 300 else 240.0 if t < 900 else 80.0)  # noqa: E731
    result = simulation.simulate(
        CAP, profile, 1860, INVOCATIONS, scaling.Limits(1, 4, 120), 1, arrivals="constant"
    )
    assert [(e["time"], e["from"], e["to"], e["ready"]) for e in result.events] == [
        (480, 1, 2, 600),
        (1800, 2, 1, 1800),
    ]
    row = {r["t"]: r for r in result.rows}
    assert (
        row[540.0]["instances"] == 1 and row[540.0]["desired"] == 2 and row[540.0]["instance_seconds"] == 120
    )
    assert row[600.0]["instances"] == 2
    # overload from 300 until 600: 300 s x 80 req/s, less the queue of 100 that absorbed the start
    assert result.summary["errors"] == 80 * 300 - 100


def test_slo_minutes_count_latency_and_errors():
    slo = tuple(parse_all("p99<300ms", "--slo"))
    result = simulation.simulate(
        CAP, constant(240.0, 300), 300, INVOCATIONS, scaling.Limits(1, 1, 60), 1, arrivals="constant", slo=slo
    )
    assert result.summary["slo_violating_minutes"] == 5
    broken = result.minutes[-1]["slo_broken"]
    assert any("error rate" in b for b in broken) and any("p99" in b for b in broken)


def calibration(**kwargs):
    endpoint = ClosedLoopEndpoint(slots=4, service_ms=25, endpoint="scaled", **kwargs)
    search = run(Search(SearchRules(slos=tuple(parse_all("p99<300ms")))), endpoint)
    return summarize(search, Instances("--instances", each=1), 0.5, "scaled", "us-east-1")


def test_capacity_from_a_calibration():
    cap = strategy.capacity(calibration(), None)
    assert cap.variant == "AllTraffic" and cap.rps_per_instance == pytest.approx(160, rel=0.01)
    assert cap.slots_per_instance == pytest.approx(4, rel=0.25)
    assert cap.service.quantile(0.5) == pytest.approx(25, rel=0.1)
    policies = strategy.calibration_policies(calibration(), "AllTraffic")
    assert [name for name, _ in policies] == [
        "scaling-policy-AllTraffic-invocations",
        "scaling-policy-AllTraffic-concurrency",
    ]


@pytest.mark.parametrize(
    "doc, variant, message",
    [
        ({"steps": []}, None, "not a calibration.json"),
        ({"steps": [], "recommendation": None}, None, "holds no recommendation"),
        (None, "variant-b", "'variant-b' is not in the calibration"),
    ],
)
def test_calibrations_that_cannot_be_simulated(doc, variant, message):
    with pytest.raises(UsageError, match=message):
        strategy.capacity(calibration() if doc is None else doc, variant)


def test_ranking_and_the_reason():
    spike = lambda t: None if t >= 1800 else (60.0 if t < 300 else 300.0 if t < 900 else 60.0)  # noqa: E731
    slo = tuple(parse_all("p99<300ms", "--slo"))
    results = [
        simulation.simulate(CAP, spike, 1800, p, scaling.Limits(1, 4, 120), 1, name=p[0].name, slo=slo)
        for p in (INVOCATIONS, CONCURRENCY)
    ]
    ranked = strategy.rank(results)
    assert [r.policy for r in ranked] == [
        "concurrency",
        "invocations",
    ]  # 10-second datapoints see the spike first
    reason = strategy.recommend(ranked)["reason"]
    inv, conc = results[0].summary, results[1].summary
    assert conc["slo_violating_minutes"] < inv["slo_violating_minutes"]
    assert reason.startswith(f"fewest minutes breaking the SLO: {conc['slo_violating_minutes']} of")
    # the same SLO record: the cheaper one wins, and the reason says by how much
    cheap, dear = (
        simulation.Result(
            "a",
            [],
            [],
            [],
            {"slo_violating_minutes": 0, "errors": 0, "instance_hours": h, "cost": h * 2, "minutes": 10},
        )
        for h in (1.0, 1.5)
    )
    rec = strategy.recommend(strategy.rank([dear, cheap]))
    assert (
        rec["reason"].startswith("serves the profile as well as a")
        and "0.50 fewer instance-hours ($1.00 less)" in rec["reason"]
    )
