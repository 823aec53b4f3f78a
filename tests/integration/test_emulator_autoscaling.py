"""Emulated autoscaling against Application Auto Scaling's documented arithmetic, with time_scale 60
(a policy minute is a real second): the bundled example (one instance of 160 req/s, target tracking
on InvocationsPerInstance at 7680 per minute, new instances in service 120 s after a decision)
under a step from 50% to 150% of one instance's capacity and back.

By hand: 240 req/s is 14400 invocations per instance per minute > 7680 from the minute the step
starts (300 s); the third such minute ends at 480 s: scale out to ceil(1 x 14400 / 7680) = 2, in
service at 600 s. Back at 80 req/s from 900 s, 2400 per instance < 6912 (90% of the target); the
15th such minute ends at 1800 s: scale in to ceil(2 x 2400 / 7680) = 1.

The same run is then simulated (smload.calibration.simulation, the emulator's capacity model and
the same profile, compressed the same way): the simulated instance count changes within one metric
period of the emulator's, and its failed requests are within 20% of the emulator's count.

Traffic: constant arrivals from the test (testkit.offered), 33 s in all, on 127.0.0.1."""

import time

import pytest
import yaml
from testkit.offered import offer_in_thread
from testkit.support import REPO, control_client, http_get, start_emulator

from smload import scaling
from smload.calibration import simulation

EXAMPLE = REPO / "emulator" / "examples" / "autoscaling.yaml"
SCALE = 60.0
CAPACITY = 160.0  # 4 slots / 25 ms


def profile(t):
    """Requests per second at policy second t."""
    if t >= 1920:
        return None
    return 0.5 * CAPACITY if t < 300 else 1.5 * CAPACITY if t < 900 else 0.5 * CAPACITY


def autoscaling(emulator):
    import json

    status, body = http_get(f"{emulator.url}/_emulator/autoscaling")
    assert status == 200, body
    return json.loads(body)["endpoints"]["autoscaling"]["variants"]["AllTraffic"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from testkit.support import Procs

    procs = Procs(tmp_path_factory.mktemp("autoscaling"))
    try:
        emulator = start_emulator(procs, "--config", str(EXAMPLE))
        client = control_client(emulator.url)
        emulator.reset()  # policy time 0 now; the traffic starts with it
        start = time.monotonic()
        thread, offered = offer_in_thread(
            emulator.port, "autoscaling", lambda t: profile(t * SCALE), start=start
        )
        # during the start-up of the second instance (policy 480..600 s): Updating, 2 desired, 1 current
        while time.monotonic() < start + 540 / SCALE:
            time.sleep(0.01)
        during = client.describe_endpoint(EndpointName="autoscaling")
        metrics_during = emulator.metrics()
        thread.join(timeout=60)
        time.sleep(0.2)  # lets the window after the last request close (a timer of the emulator)
        yield {
            "emulator": emulator,
            "offered": offered,
            "during": during,
            "metrics_during": metrics_during,
            "after": client.describe_endpoint(EndpointName="autoscaling"),
            "state": autoscaling(emulator),
            "stats": emulator.stats(),
            "metrics": emulator.metrics(),
            "start": start,
        }
    finally:
        procs.stop_all()


def test_scale_out_and_in_follow_the_documented_alarm_arithmetic(run):
    out, into = run["state"]["scaling_events"]
    window = scaling.WINDOW_S  # the emulator closes windows on time; one window of slack for the machine
    assert out["from"] == 1 and out["to"] == 2, out  # ceil(1 x 14400 / 7680)
    assert abs(out["time"] - 480) <= window, out  # the third breaching minute ends at 480 s
    assert abs(out["ready"] - (out["time"] + 120)) < 1e-6, out  # start-up 120 s of policy time
    assert "3 x 60 s" in out["reason"] and "ceil(1 x 14" in out["reason"]
    assert into["from"] == 2 and into["to"] == 1, into  # ceil(2 x 2400 / 7680)
    assert abs(into["time"] - 1800) <= window, into  # 15 minutes below 6912 after the drop at 900 s
    assert "15 x 60 s" in into["reason"]


def test_new_instances_take_traffic_only_once_ready(run):
    timeline = run["state"]["timeline"]
    rows = list(zip(timeline["t"], timeline["instances"], timeline["errors"], timeline["queue"], strict=True))
    assert {n for t, n, _, _ in rows if t <= 600 - 10} == {1}
    assert {n for t, n, _, _ in rows if 610 + 10 <= t <= 1800 - 10} == {2}
    # one instance under 150%: its queue fills and overflows until the second one is in service
    assert sum(e for t, _, e, _ in rows if 300 < t <= 600) > 200
    assert sum(e for t, _, e, _ in rows if t > 700) == 0
    assert max(q for t, _, _, q in rows if 700 < t) < 10  # two instances drain the queue at once


def test_describe_endpoint_shows_the_update_as_aws_does(run):
    during = run["during"]
    variant = during["ProductionVariants"][0]
    assert during["EndpointStatus"] == "Updating"
    assert (variant["VariantName"], variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (
        "AllTraffic",
        1,
        2,
    )
    assert variant["VariantStatus"][0]["Status"] == "Creating"
    after = run["after"]
    assert after["EndpointStatus"] == "InService"
    assert (
        after["ProductionVariants"][0]["CurrentInstanceCount"],
        after["ProductionVariants"][0]["DesiredInstanceCount"],
    ) == (1, 1)


def test_stats_and_metrics_carry_instances_and_events(run):
    variant = run["stats"]["endpoints"]["autoscaling"]["variants"]["AllTraffic"]
    assert variant["instances"] == 1 and variant["scaling_events"] == run["state"]["scaling_events"]
    assert variant["requests"] == run["offered"].sent == sum(run["offered"].status.values())
    assert variant["errors"] == {"ModelError": run["offered"].status[424]}
    labels = 'endpoint="autoscaling",variant="AllTraffic"'
    assert f"sagemaker_emulator_instances{{{labels}}} 1\n" in run["metrics_during"]
    assert f"sagemaker_emulator_capacity_slots{{{labels}}} 4\n" in run["metrics_during"]
    assert f'sagemaker_emulator_scaling_events_total{{{labels},direction="out"}} 1\n' in run["metrics"]
    assert f'sagemaker_emulator_scaling_events_total{{{labels},direction="in"}} 1\n' in run["metrics"]


def test_the_simulation_predicts_the_emulators_run(run):
    config = yaml.safe_load(EXAMPLE.read_text())
    variant = config["endpoints"][0]["variants"][0]
    policies = scaling.parse_policies(variant["autoscaling"]["policies"], "example")
    limits = scaling.Limits(1, 4, 120)
    service = simulation.Service(((0.5, 25.0), (0.99, 25.0)), 25.0)
    capacity = simulation.Capacity("AllTraffic", CAPACITY, 4, service)
    predicted = simulation.simulate(
        capacity, profile, 1920, policies, limits, 1, arrivals="constant", time_scale=SCALE
    )
    observed = run["state"]["scaling_events"]
    assert [(e["from"], e["to"]) for e in predicted.events] == [(e["from"], e["to"]) for e in observed]
    for p, o in zip(predicted.events, observed, strict=True):
        assert abs(p["time"] - o["time"]) <= 60 and abs(p["ready"] - o["ready"]) <= 60, (p, o)
    errors = run["stats"]["endpoints"]["autoscaling"]["variants"]["AllTraffic"]["errors"]["ModelError"]
    assert predicted.summary["errors"] == pytest.approx(errors, rel=0.2), (predicted.summary, errors)


COMPONENT = """
time_scale: 60
endpoints:
  - name: llm-ep
    inference_components:
      - name: ic
        copies: 1
        concurrency: 4
        latency: 25
        autoscaling:
          max_capacity: 3
          startup_s: 60
          policies:
            - TargetValue: 2.0
              PredefinedMetricSpecification:
                PredefinedMetricType: SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution
"""


def test_an_inference_component_scales_on_its_high_resolution_concurrency(procs, tmp_path):
    """Copies of a component, on ConcurrentRequestsPerCopy (10-second periods): 240 req/s from 120 s
    fill one copy's slots and queue at once, so the windows ending 130, 140 and 150 s breach the
    target of 2: scale out at 150 s to the maximum, 3 copies, in service 60 s later."""
    (tmp_path / "ic.yaml").write_text(COMPONENT)
    emulator = start_emulator(procs, "--config", str(tmp_path / "ic.yaml"))
    client = control_client(emulator.url)
    emulator.reset()
    start = time.monotonic()
    rate = lambda t: None if t * SCALE >= 600 else (40.0 if t * SCALE < 120 else 240.0)  # noqa: E731
    thread, offered = offer_in_thread(
        emulator.port, "llm-ep", rate, start=start, headers=b"X-Amzn-SageMaker-Inference-Component: ic\r\n"
    )
    while time.monotonic() < start + 180 / SCALE:
        time.sleep(0.01)
    during = client.describe_inference_component(InferenceComponentName="ic")
    thread.join(timeout=60)
    status, body = http_get(f"{emulator.url}/_emulator/autoscaling")
    import json

    state = json.loads(body)["endpoints"]["llm-ep"]["inference_components"]["ic"]
    (event,) = state["scaling_events"]
    assert (event["from"], event["to"]) == (1, 3) and abs(event["time"] - 150) <= scaling.WINDOW_S, event
    assert event["ready"] == pytest.approx(event["time"] + 60)
    assert "for 3 x 10 s" in event["reason"]
    assert during["InferenceComponentStatus"] == "Updating"
    assert during["RuntimeConfig"] == {"DesiredCopyCount": 3, "CurrentCopyCount": 1}
    after = client.describe_inference_component(InferenceComponentName="ic")
    assert after["RuntimeConfig"] == {"DesiredCopyCount": 3, "CurrentCopyCount": 3}
    stats = emulator.stats()["endpoints"]["llm-ep"]["inference_components"]["ic"]
    assert stats["instances"] == 3 and stats["requests"] == offered.sent
    assert (
        'sagemaker_emulator_instances{endpoint="llm-ep",inference_component="ic"} 3\n' in emulator.metrics()
    )
