"""The calibration search as pure code, driven by a queueing model of an endpoint (no processes):
the step schedule, the stop rules, the bisection, the summary and the recommendation maths."""

import pytest
from testkit.endpoint_model import ClosedLoopEndpoint, run, traffic

from smload.calibration import policies
from smload.calibration.search import (
    ERROR_RATE,
    MAX_STEPS,
    MAX_USERS,
    OVERLOADED,
    PLATEAU,
    RATE,
    SLO,
    Instances,
    Search,
    SearchRules,
    Window,
    summarize,
)
from smload.results.checks import parse_all


def users_tried(search):
    return [s.users for s in search.steps]


def test_constant_latency_endpoint_plateaus_and_refines_to_the_knee():
    search = run(Search(SearchRules()), ClosedLoopEndpoint(slots=8, service_ms=25))
    assert search.stop_reason == PLATEAU
    # the plateau is 320 req/s; the knee is the first concurrency within 10% of it (>= 288 req/s)
    assert users_tried(search) == [1, 2, 4, 8, 16, 6, 7]
    assert [s.phase for s in search.steps] == ["explore"] * 5 + ["refine"] * 2
    assert search.knee.users == 8 and search.knee.bracket == (7, 8) and search.knee.rps == pytest.approx(320)
    assert search.best_step.rps == pytest.approx(320)
    assert "+0.0% over 8 users" in search.stop_detail


def test_client_overhead_shifts_the_plateau_but_not_the_maximum():
    search = run(Search(SearchRules()), ClosedLoopEndpoint(slots=8, service_ms=25, overhead_ms=3))
    # 8 users reach 8/28ms = 286 req/s; 16 users saturate at 320 (+12%: still growing), 32 do not grow.
    assert users_tried(search)[:6] == [1, 2, 4, 8, 16, 32]
    assert search.stop_reason == PLATEAU
    assert search.best_step.rps == pytest.approx(320)
    assert search.knee.users in (8, 9)
    assert search.knee.bracket[1] - search.knee.bracket[0] == 1


def test_slo_tighter_than_the_base_latency_stops_at_the_first_step_and_says_why():
    search = run(Search(SearchRules(slos=tuple(parse_all("p99<10ms")))), ClosedLoopEndpoint(service_ms=25))
    assert users_tried(search) == [1]
    assert search.stop_reason == SLO
    assert search.steps[0].reasons == [
        f"p99 {search.steps[0].window.total.histogram.quantile(0.99):.1f} ms, SLO p99 < 10 ms"
    ]
    assert "1 users: p99" in search.stop_detail
    assert search.best_step is None and search.knee is None
    assert any("no step met the SLO" in w for w in search.warnings())


def test_error_rate_stop_fires_on_a_failing_endpoint():
    search = run(Search(SearchRules(max_error_rate=0.01)), ClosedLoopEndpoint(error_rate=0.05))
    assert search.stop_reason == ERROR_RATE
    assert users_tried(search) == [1]
    assert search.steps[0].reasons == ["error rate 5 % > 1 %"]
    tolerant = run(Search(SearchRules(max_error_rate=0.10)), ClosedLoopEndpoint(error_rate=0.05))
    assert tolerant.stop_reason == PLATEAU


def test_slo_bound_knee_is_bisected_to_the_last_good_concurrency():
    # Past 8 users, latency = users / 320 req/s: 12 users -> 37.5 ms, 14 -> 43.75 ms, 15 -> 46.9 ms, 16 -> 50 ms.
    search = run(
        Search(SearchRules(slos=tuple(parse_all("p50<45ms")))), ClosedLoopEndpoint(slots=8, service_ms=25)
    )
    assert search.stop_reason == SLO  # judged before the plateau: 16 users break the SLO
    assert users_tried(search) == [1, 2, 4, 8, 16, 12, 14, 15]
    assert search.knee.users == 14 and search.knee.bracket == (14, 15)
    assert search.steps[-1].verdict == SLO and search.steps[-2].good


def test_a_throughput_that_keeps_growing_is_stopped_by_the_slo_not_a_plateau():
    batching = ClosedLoopEndpoint(
        slots=8, service_ms=25, batching_gain=0.5
    )  # GPU batching: more users, more req/s
    search = run(Search(SearchRules(slos=tuple(parse_all("p50<60ms")), max_users=64)), batching)
    assert search.stop_reason == SLO
    lo, hi = search.knee.bracket
    assert hi - lo <= max(1, 0.05 * lo)
    lo_step = next(s for s in search.steps if s.users == lo)
    hi_step = next(s for s in search.steps if s.users == hi)
    assert lo_step.good and lo_step.window.total.histogram.quantile(0.5) < 60
    assert hi_step.verdict == SLO
    assert search.best_step.users == lo and search.best_step.rps > 320


def test_max_users_stops_and_warns_that_the_endpoint_was_not_saturated():
    search = run(Search(SearchRules(max_users=20)), ClosedLoopEndpoint(slots=1000, service_ms=25))
    assert users_tried(search) == [1, 2, 4, 8, 16, 20]
    assert search.stop_reason == MAX_USERS and search.knee is None
    assert any("not saturated" in w for w in search.warnings())


def test_max_steps_bounds_the_run():
    search = run(Search(SearchRules(max_steps=3)), ClosedLoopEndpoint())
    assert len(search.steps) == 3 and search.stop_reason == MAX_STEPS


def test_start_users_above_the_knee_bisects_downwards():
    search = run(
        Search(SearchRules(start_users=16, slos=tuple(parse_all("p50<40ms")))), ClosedLoopEndpoint(slots=8)
    )
    assert search.steps[0].verdict == SLO
    # 16 users: 50 ms; 8: 25 ms; 12: 37.5 ms; 14: 43.75 ms; 13: 40.6 ms.
    assert users_tried(search) == [16, 8, 12, 14, 13]
    assert search.knee.users == 12 and search.knee.bracket == (12, 13)


def test_generator_saturation_warning():
    search = run(Search(SearchRules()), ClosedLoopEndpoint(cpu=lambda users: 95.0 if users >= 16 else 40.0))
    warning = next(w for w in search.warnings() if "load generator was saturated" in w)
    assert "saturated at step 5 (16 users: CPU 95%)" in warning


def test_generator_loop_lag_warning():
    lagging = run(
        Search(SearchRules()), ClosedLoopEndpoint(service_ms=25, lag=lambda users: 6.0 if users >= 8 else 0.7)
    )
    warning = next(w for w in lagging.warnings() if "load generator was saturated" in w)
    assert "step 4 (8 users: event loop 6.0 ms late on average (median latency 24.8 ms))" in warning
    noisy = run(
        Search(SearchRules()), ClosedLoopEndpoint(service_ms=25, lag=lambda users: 1.5)
    )  # below the 2 ms floor
    assert not any("load generator" in w for w in noisy.warnings())


def test_a_client_overhead_growing_with_concurrency_does_not_drag_the_knee_down():
    # 64 slots x 5 ms = 12,800 req/s; the client adds 0.02 ms per concurrent user (32 users: 11% slower
    # per user), and the endpoint saturates at ~86 users.
    search = run(
        Search(SearchRules(max_users=512)),
        ClosedLoopEndpoint(slots=64, service_ms=5, overhead_per_user_ms=0.02),
    )
    assert search.stop_reason == PLATEAU and search.best_step.rps == pytest.approx(12800)
    assert 64 <= search.knee.users <= 96
    low, high = search.knee.bracket
    assert high - low <= max(1, 0.05 * low)


def test_steps_serialize_with_their_percentiles_and_verdicts():
    search = run(Search(SearchRules()), ClosedLoopEndpoint(variants=(("a", 0.7), ("b", 0.3))))
    step = search.steps[0].as_dict()
    assert step["users"] == 1 and step["phase"] == "explore" and step["verdict"] == "ok"
    assert step["rps"] == pytest.approx(40) and step["requests"] == 400
    assert (
        step["p50_ms"] == pytest.approx(25, rel=0.02) and step["p99_ms"] >= step["p90_ms"] >= step["p50_ms"]
    )
    assert set(step["names"]) == {"ep/a", "ep/b"} and step["names"]["ep/a"]["requests"] == 280


def test_summary_and_recommendation_maths():
    endpoint = ClosedLoopEndpoint(slots=8, service_ms=25, endpoint="ab", variants=(("a", 0.5), ("b", 0.5)))
    search = run(Search(SearchRules()), endpoint)
    result = summarize(
        search, Instances("--instances", each=2), safety_factor=0.5, endpoint="ab", region="eu-west-1"
    )
    assert result["stop_reason"] == PLATEAU
    assert result["max_sustainable_rps"] == pytest.approx(320)
    assert result["instances"] == 4 and result["instances_source"] == "--instances"
    assert result["max_rps_per_instance"] == pytest.approx(80)
    assert result["recommended_invocations_per_instance"] == 2400.0  # 80 x 0.5 x 60
    variant = result["recommendation"]["variants"]["a"]
    assert variant["max_rps_per_instance"] == pytest.approx(80)
    assert variant["invocations_per_instance"]["policy"] == {
        "TargetValue": 2400.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleOutCooldown": 300,
        "ScaleInCooldown": 300,
    }
    # knee at 8 users, 4 per variant; Little's law: 160 req/s x 25 ms = 4 in flight over 2 instances.
    concurrency = variant["concurrency_high_resolution"]
    assert concurrency["knee_concurrency_per_instance"] == pytest.approx(2.0, rel=0.02)
    assert concurrency["target"] == pytest.approx(1.0, abs=0.1)
    assert (
        concurrency["policy"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    )
    register, put = variant["invocations_per_instance"]["commands"]
    assert register.startswith(
        "aws application-autoscaling register-scalable-target --service-namespace sagemaker "
        "--resource-id endpoint/ab/variant/a --scalable-dimension sagemaker:variant:DesiredInstanceCount"
    )
    assert "--region eu-west-1" in register and "--min-capacity 2" in register
    assert put.endswith("file://scaling-policy-a-invocations.json")
    assert result["knee"]["users"] == 8 and result["knee"]["concurrency_per_instance"] == 2.0
    assert len(result["steps"]) == len(search.steps) and result["settings"]["safety_factor"] == 0.5


def test_summary_with_describe_endpoint_counts_and_a_missing_variant():
    endpoint = ClosedLoopEndpoint(endpoint="ab", variants=(("a", 0.5), ("b", 0.5)))
    search = run(Search(SearchRules()), endpoint)
    result = summarize(search, Instances("DescribeEndpoint", per_variant={"a": 3}), 0.5, "ab")
    assert result["instances"] == 3 and set(result["recommendation"]["variants"]) == {"a"}
    assert any("no instance count for variant(s) b" in w for w in result["warnings"])


def test_summary_without_a_good_step_has_no_recommendation():
    search = run(Search(SearchRules(slos=tuple(parse_all("p99<1ms")))), ClosedLoopEndpoint())
    result = summarize(search, Instances("--instances", each=1), 0.5, "ep")
    assert result["max_sustainable_rps"] is None and result["recommendation"] is None
    assert result["stop_reason"] == SLO and result["steps"][0]["verdict"] == SLO


@pytest.mark.parametrize(
    "rps, safety, expected", [(160.0, 0.5, 4800.0), (0.01, 0.5, 1.0), (33.3, 0.3, 599.0)]
)
def test_invocations_target(rps, safety, expected):
    assert policies.invocations_target(rps, safety) == expected


class OpenLoopEndpoint:
    """A model endpoint offered an arrival rate: below its capacity every arrival completes at the
    service time; above it only the capacity completes, and the latency grows with the queue."""

    def __init__(self, capacity=200.0, service_ms=40.0):
        self.capacity = capacity
        self.service_ms = service_ms

    def measure(self, rate, seconds=4.0):
        done = min(rate, self.capacity)
        latency = (
            self.service_ms if rate <= self.capacity else self.service_ms + 1000 * (rate - done) * 3 / done
        )
        total = traffic(int(done * seconds), 0, done, latency)
        return Window(rate, 0, 2, 2 + seconds, total, {}, {}, 5.0, 0.5, offered=float(rate))


def test_by_rate_an_overloaded_step_gives_the_capacity_and_two_steps_close_the_bracket():
    settings = SearchRules(slos=tuple(parse_all("p99<2s")), start_users=10, max_users=100_000, mode=RATE)
    search = run(Search(settings), OpenLoopEndpoint(capacity=200))
    assert users_tried(search) == [10, 20, 40, 80, 160, 320, 200, 205]
    assert search.stop_reason == OVERLOADED and "320 req/s offered: 200.0 of the 320" in search.stop_detail
    assert search.knee.users == 200 and search.knee.bracket == (200, 205)
    summary = summarize(search, Instances("--instances", each=1), 0.5, "ep")
    assert summary["knee"]["rate"] == 200 and summary["max_sustainable_rps"] == pytest.approx(200)
    assert summary["steps"][5]["offered_rps"] == 320 and summary["steps"][5]["verdict"] == OVERLOADED


def test_by_rate_a_capacity_between_integers_is_bracketed_within_its_precision():
    settings = SearchRules(start_users=10, max_users=100_000, mode=RATE)
    search = run(Search(settings), OpenLoopEndpoint(capacity=268.3))
    assert (
        search.knee.users <= 268.3
        and (search.knee.bracket[1] - search.knee.bracket[0]) <= 0.025 * search.knee.users
    )
    assert len(search.steps) <= 9
