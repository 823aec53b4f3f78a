"""Application Auto Scaling as smload.scaling models it: the alarms target tracking creates (3 of 3
above the target to scale out, 15 of 15 below 90% of it to scale in; 10-second periods for the
high-resolution concurrency metrics), the proportional formula, cooldowns, the endpoint's Updating
state, step scaling, and the policy documents Application Auto Scaling would refuse."""

import json

import pytest

from smload import scaling
from smload.usage import UsageError

INVOCATIONS = {
    "TargetValue": 7680.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.INVOCATIONS_PER_INSTANCE},
}
CONCURRENCY = {
    "TargetValue": 2.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.CONCURRENCY_PER_MODEL},
}


def policy(doc, component=False):
    return scaling.parse_policies(doc, "--policy p.json", "p", component)


def drive(policies, limits, rate, until, instances=1, concurrency=None):
    """Feed 10-second windows of ``rate(t)`` req/s (and ``concurrency(t, n)`` per instance); complete
    scale-outs at their ready time, scale-ins at once. Returns the scaler."""
    scaler = scaling.Scaler(policies, limits, instances)
    pending = []
    t = 0
    while t < until:
        t += scaling.WINDOW_S
        r = rate(t - 5)
        n = scaler.in_service
        c = concurrency(t - 5, n) if concurrency else 0.0
        for activity in scaler.close(scaling.Window(t, r * 10, r * 10 / n, c, c, n)):
            if activity.out:
                pending.append(activity)
            else:
                scaler.complete(activity, t)
        for activity in list(pending):
            if scaler.ready_at(activity) <= t:
                scaler.complete(activity, scaler.ready_at(activity))
                pending.remove(activity)
    return scaler


def step(t):  # 50% then 150% then 50% of one instance's 160 req/s
    return 80.0 if t < 300 else 240.0 if t < 900 else 80.0


def test_target_tracking_on_invocations_follows_the_alarm_arithmetic():
    scaler = drive(policy(INVOCATIONS), scaling.Limits(1, 4, 120), step, 2100)
    out, into = scaler.activities
    # 240 req/s = 14400 per minute per instance > 7680 in the minutes ending 360, 420, 480: 3 of 3
    assert (out.time, out.old, out.new, out.ready) == (480, 1, 2, 600)  # ceil(1 x 14400 / 7680) = 2, +120 s
    assert "ceil(1 x 14400 / 7680) = 2" in out.reason
    # from 900 on, 2400 per instance < 6912 (90% of 7680): the 15th low minute ends at 1800
    assert (into.time, into.old, into.new) == (1800, 2, 1)  # ceil(2 x 2400 / 7680) = 1
    assert scaler.desired == scaler.in_service == 1


def test_the_alarms_aws_creates_for_each_predefined_metric():
    high, low = policy(INVOCATIONS)[0].alarms()
    assert (
        high.metric,
        high.statistic,
        high.period_s,
        high.datapoints,
        high.evaluation_periods,
        high.threshold,
        high.comparison,
    ) == ("InvocationsPerInstance", "Sum", 60, 3, 3, 7680.0, "GreaterThanThreshold")
    assert (low.period_s, low.datapoints, low.evaluation_periods, low.threshold, low.comparison) == (
        60,
        15,
        15,
        pytest.approx(6912.0),
        "LessThanThreshold",
    )
    high, low = policy(CONCURRENCY)[0].alarms()
    assert (high.metric, high.statistic, high.period_s, high.datapoints) == (
        "ConcurrentRequestsPerModel",
        "Average",
        10,
        3,
    )
    assert (low.period_s, low.datapoints, low.threshold) == (
        10,
        90,
        pytest.approx(1.8),
    )  # 15 minutes, as slow


def test_high_resolution_concurrency_scales_out_after_three_ten_second_datapoints():
    def concurrency(t, n):
        return 1.0 if t < 300 else 9.0 / n  # 9 requests in flight in all, from t = 300

    scaler = drive(policy(CONCURRENCY), scaling.Limits(1, 8, 60), step, 700, concurrency=concurrency)
    first = scaler.activities[0]
    assert (first.time, first.old, first.new, first.ready) == (
        330,
        1,
        5,
        390,
    )  # windows ending 310, 320, 330; ceil(9 / 2)


def test_a_scale_out_is_capped_by_max_capacity_and_scale_in_by_min_capacity():
    scaler = drive(
        policy(INVOCATIONS), scaling.Limits(2, 3, 60), lambda t: 2000.0 if t < 600 else 1.0, 2400, instances=2
    )
    assert [(a.old, a.new) for a in scaler.activities] == [(2, 3), (3, 2)]


def test_no_other_change_while_the_endpoint_is_updating_and_a_larger_scale_out_follows():
    rates = lambda t: 240.0 if t < 400 else 1200.0  # noqa: E731 - rises again while the first instances start
    scaler = drive(policy(INVOCATIONS), scaling.Limits(1, 10, 600), rates, 1500)
    first, second = scaler.activities[:2]
    assert (first.time, first.new) == (180, 2)
    assert second.time >= first.ready == 780  # nothing while Updating (180..780), then the larger scale-out
    assert second.new == 10  # ceil(2 x 36000 / 7680) = 10


def test_scale_in_waits_for_its_cooldown_and_for_every_policy():
    both = policy([dict(INVOCATIONS, ScaleInCooldown=600), CONCURRENCY])
    # invocations would scale in, but concurrency per instance stays above 90% of its target: no scale-in
    scaler = drive(
        both, scaling.Limits(1, 4, 60), lambda t: 80.0, 3000, instances=3, concurrency=lambda t, n: 1.9
    )
    assert scaler.activities == []
    scaler = drive(
        both, scaling.Limits(1, 4, 60), lambda t: 80.0, 3000, instances=3, concurrency=lambda t, n: 0.1
    )
    assert [(a.old, a.new) for a in scaler.activities] == [(3, 1)]


def test_disable_scale_in():
    scaler = drive(
        policy(dict(INVOCATIONS, DisableScaleIn=True)),
        scaling.Limits(1, 4, 60),
        lambda t: 10.0,
        3000,
        instances=3,
    )
    assert scaler.activities == []


def test_an_idle_endpoint_has_no_invocations_datapoint_and_never_scales_in():
    scaler = drive(policy(INVOCATIONS), scaling.Limits(1, 4, 60), lambda t: 0.0, 3600, instances=3)
    assert scaler.activities == []


STEP = {
    "PolicyType": "StepScaling",
    "StepScalingPolicyConfiguration": {
        "AdjustmentType": "ChangeInCapacity",
        "Cooldown": 120,
        "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5000, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 5000, "ScalingAdjustment": 3},
        ],
    },
    "Alarm": {
        "MetricName": "InvocationsPerInstance",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "Threshold": 6000,
        "ComparisonOperator": "GreaterThanThreshold",
    },
}


def test_step_scaling_on_its_alarm():
    scaler = drive(policy(STEP), scaling.Limits(1, 10, 60), step, 900)
    first = scaler.activities[0]
    # 14400 per minute: 8400 above the threshold -> the second step, +3; 2 of 2 minutes (360, 420)
    assert (first.time, first.old, first.new) == (420, 1, 4)


@pytest.mark.parametrize(
    "doc, message",
    [
        (dict(INVOCATIONS, TargetValue=-5), "TargetValue must be a number above 0"),
        (dict(INVOCATIONS, TargetValue="5"), "Invalid type for parameter TargetValue"),
        (dict(INVOCATIONS, ScaleOutCoolDown=60), 'Unknown parameter in input: "ScaleOutCoolDown"'),
        (dict(INVOCATIONS, ScaleInCooldown=-1), "ScaleInCooldown must be between 0"),
        ({"TargetValue": 5.0}, "give PredefinedMetricSpecification"),
        (
            {
                "TargetValue": 5.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            },
            "does not scale a production variant",
        ),
        ({"TargetValue": 5.0, "PredefinedMetricSpecification": {}}, "Missing required parameter"),
        (
            {"TargetValue": 5.0, "CustomizedMetricSpecification": {"MetricName": "CPUUtilization"}},
            "is not modelled",
        ),
        ({"PolicyType": "PredictiveScaling"}, "PredictiveScaling is not available"),
        (
            {
                "PolicyType": "StepScaling",
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "StepAdjustments": [
                        {
                            "MetricIntervalLowerBound": 0,
                            "MetricIntervalUpperBound": 10,
                            "ScalingAdjustment": 1,
                        },
                        {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2},
                    ],
                },
                "Alarm": STEP["Alarm"],
            },
            "must not overlap or leave gaps",
        ),
        ({**STEP, "Alarm": {**STEP["Alarm"], "Period": 45}}, "Period must be 10, 30 or a multiple of 60"),
        (
            {**STEP, "Alarm": {**STEP["Alarm"], "MetricName": "CPUUtilization"}},
            "the metric must be AWS/SageMaker",
        ),
        ({**STEP, "Alarm": None}, "step scaling needs the alarm that triggers it"),
        ({"PolicyName": "x", "ScalableDimension": "ecs:service:DesiredCount"}, "ScalableDimension"),
        ([], "holds no scaling policy"),
    ],
)
def test_policies_application_auto_scaling_would_refuse(doc, message):
    with pytest.raises(UsageError) as caught:
        policy(doc)
    text = str(caught.value)
    assert text.startswith("--policy p.json") and message in text and "\n" not in text, text


def test_component_metrics_scale_components_only():
    doc = {
        "TargetValue": 4.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.CONCURRENCY_PER_COPY},
    }
    assert policy(doc, component=True)[0].metric == scaling.CONCURRENCY_PER_COPY
    with pytest.raises(UsageError, match="does not scale a production variant"):
        policy(doc)


def test_the_documents_calibration_and_the_aws_cli_write_are_read(tmp_path):
    bare = tmp_path / "scaling-policy-AllTraffic-invocations.json"
    bare.write_text(json.dumps(INVOCATIONS))
    assert [p.name for p in scaling.load_policies(bare)] == ["scaling-policy-AllTraffic-invocations"]
    described = tmp_path / "live.json"  # aws application-autoscaling describe-scaling-policies
    described.write_text(
        json.dumps(
            {
                "ScalingPolicies": [
                    {
                        "PolicyARN": "arn:aws:autoscaling:...",
                        "PolicyName": "live",
                        "ServiceNamespace": "sagemaker",
                        "ResourceId": "endpoint/ep/variant/AllTraffic",
                        "ScalableDimension": scaling.VARIANT_DIMENSION,
                        "PolicyType": "TargetTrackingScaling",
                        "TargetTrackingScalingPolicyConfiguration": CONCURRENCY,
                        "Alarms": [{"AlarmName": "a", "AlarmARN": "arn"}],
                        "CreationTime": "2025-01-01T00:00:00Z",
                    }
                ]
            }
        )
    )
    (live,) = scaling.load_policies(described)
    assert (live.name, live.metric, live.target) == ("live", scaling.CONCURRENCY_PER_MODEL, 2.0)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UsageError, match=r"^--policy: .*broken.json is not JSON"):
        scaling.load_policies(broken)


def test_limits_are_checked():
    with pytest.raises(UsageError, match="min capacity"):
        scaling.check_limits(scaling.Limits(5, 2), [], "--min-capacity")
    with pytest.raises(UsageError, match="scale to zero"):
        scaling.check_limits(scaling.Limits(0, 2), policy(INVOCATIONS), "--min-capacity")


def test_a_datapoint_measured_on_fewer_instances_does_not_scale_out_twice():
    """Instances that joined just before a minute ended did not serve it: the minute's load (its
    invocations over the target) decides, not the count now x the per-instance value measured on
    fewer instances (that would be ceil(2 x 14400 / 7680) = 4)."""
    scaler = scaling.Scaler(policy(INVOCATIONS), scaling.Limits(1, 8, 120), 1)
    out = None
    t = 0
    while t < 600:
        t += 10
        n = scaler.in_service
        started = scaler.close(scaling.Window(t, 240 * 10, 240 * 10 / n, 0, 0, n))
        out = out or (started[0] if started else None)
        if t == 290:
            scaler.complete(out, 299.9)  # in service a moment before the minute ending at 300
    assert (out.time, out.new) == (180, 2) and scaler.in_service == 2
    assert scaler.activities == [out]  # the minute ending at 300: 14400 invocations in all -> 2, no change
