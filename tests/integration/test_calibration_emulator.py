"""``smload calibrate`` against the real emulator, whose capacity is known exactly
(instances x slots / mean latency): the knee it reports, its stop rules, the recommendation, the
files it writes, exact request counts, and DescribeEndpoint (on moto's SageMaker control plane:
AWS itself cannot be reached from here, and moto speaks its API)."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from testkit.support import (
    ARTIFACTS,
    BIN,
    REPO,
    aws_env,
    distributed_args,
    locust_results,
    render_in_chromium,
    start_emulator,
    start_moto,
)

PAYLOAD = str(REPO / "locust" / "payloads" / "small.json")
LOGNORMAL_Z99 = 2.3263478740408408
FAST_STEPS = ["--step-warmup", "2", "--step-time", "4"]  # short steps: the emulator is steady within a second


def capacity(instances: int, slots: int, median_ms: float, p99_ms: float | None = None) -> float:
    """Requests per second the emulator serves when every slot is busy: slots / mean service time."""
    sigma = math.log(p99_ms / median_ms) / LOGNORMAL_Z99 if p99_ms else 0.0
    return instances * slots / (median_ms * math.exp(sigma**2 / 2) / 1000)


def calibrate(emulator, tmp_path, *args, workers=1, env=None, timeout=400):
    out = tmp_path / "out"
    cmd = [
        str(BIN / "smload"),
        "calibrate",
        "--endpoint-name",
        "ep",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        PAYLOAD,
        "--output",
        str(out),
        "--stop-timeout",
        "10",
        "--json",
        *distributed_args(workers),
        *args,
    ]
    result = subprocess.run(
        cmd,
        env=env or aws_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        start_new_session=True,
    )
    summary = (
        json.loads((out / "calibration.json").read_text()) if (out / "calibration.json").exists() else None
    )
    return result, summary


def variant(instances, slots, median_ms, p99_ms=None, name="AllTraffic", **faults):
    spec = f"name={name},instances={instances},concurrency={slots},latency_ms={median_ms}"
    if p99_ms:
        spec += f",latency_p99_ms={p99_ms}"
    return ["--endpoint", "ep", "--variant", spec + "".join(f",{k}={v}" for k, v in faults.items())]


@pytest.mark.parametrize(
    "instances, slots, median_ms, p99_ms, workers",
    [
        (2, 4, 25, None, 1),  # 320 req/s, constant latency
        (1, 8, 40, None, 2),  # 200 req/s, two worker processes
        (3, 2, 20, 60, 1),  # 268 req/s, lognormal latency (mean 22.4 ms)
    ],
    ids=["2x4x25ms", "1x8x40ms-2workers", "3x2-lognormal"],
)
def test_knee_within_10_percent_of_the_known_capacity(
    procs, tmp_path, request, instances, slots, median_ms, p99_ms, workers
):
    emulator = start_emulator(procs, *variant(instances, slots, median_ms, p99_ms))
    expected = capacity(instances, slots, median_ms, p99_ms)
    result, summary = calibrate(
        emulator, tmp_path, "--instances", str(instances), "--slo", "p99<2s", *FAST_STEPS, workers=workers
    )
    assert result.returncode == 0, result.stderr[-4000:]

    assert summary["max_sustainable_rps"] == pytest.approx(expected, rel=0.10), summary["steps"]
    assert summary["stop_reason"] == "plateau"
    assert summary["duration_s"] < 300
    knee = summary["knee"]
    low, high = knee["bracket"]
    assert high - low <= max(1, 0.05 * low)
    assert (
        slots * instances * 0.75 <= knee["users"] <= slots * instances * 1.5
    )  # the queue starts at the slot count
    per_instance = summary["max_sustainable_rps"] / instances
    assert summary["max_rps_per_instance"] == pytest.approx(per_instance, abs=0.01)
    assert summary["recommended_invocations_per_instance"] == math.floor(per_instance * 0.5 * 60)
    assert summary["instances"] == instances and summary["instances_source"] == "--instances"
    policy = json.loads((tmp_path / "out" / "scaling-policy-AllTraffic-invocations.json").read_text())
    assert policy["TargetValue"] == summary["recommended_invocations_per_instance"]
    concurrency = summary["recommendation"]["variants"]["AllTraffic"]["concurrency_high_resolution"]
    assert concurrency["knee_concurrency_per_instance"] == pytest.approx(knee["users"] / instances, rel=0.15)

    # nothing lost: every request the emulator answered is in Locust's count, and each step's
    # window is within it
    total = locust_results(result).requests[("InvokeEndpoint", "ep/AllTraffic")]
    assert emulator.stats()["requests"] == total
    assert sum(step["requests"] for step in summary["steps"]) < total
    for step in summary["steps"]:
        assert step["names"]["ep/AllTraffic"]["requests"] == step["requests"]
        assert step["rps"] == pytest.approx(
            step["requests"] / (step["window_s"][1] - step["window_s"][0]), abs=0.01
        )
    assert "=== Calibration ===" in result.stderr and "max sustainable throughput" in result.stderr

    # the report of this run, in a real browser: its charts carry these steps
    page = render_in_chromium(
        tmp_path / "out" / "calibration.html", ARTIFACTS / f"calibration-{request.node.callspec.id}.png"
    )
    assert page["pageErrors"] == [] and [m for m in page["console"] if m["type"] == "error"] == []
    assert page["requests"] == []
    charts = {c["id"]: c for c in page["charts"]}
    p99 = next(d["data"] for d in charts["latency-vs-throughput"]["datasets"] if d["label"] == "p99")
    by_users = sorted(summary["steps"], key=lambda s: s["users"])
    assert [(p["x"], p["y"]) for p in p99] == [(s["rps"], s["p99_ms"]) for s in by_users]
    assert any(d["label"].startswith("SLO p99<2s") for d in charts["latency-vs-throughput"]["datasets"])


def test_an_slo_tighter_than_the_base_latency_stops_at_the_first_step(procs, tmp_path):
    emulator = start_emulator(procs, *variant(2, 4, 25))
    result, summary = calibrate(emulator, tmp_path, "--instances", "2", "--slo", "p50<10ms", *FAST_STEPS)
    assert result.returncode == 3, result.stderr[-3000:]  # no sustainable throughput: nothing to recommend
    assert summary["stop_reason"] == "slo" and len(summary["steps"]) == 1
    assert summary["max_sustainable_rps"] is None and summary["recommendation"] is None
    p50 = summary["steps"][0]["p50_ms"]
    assert p50 == pytest.approx(25, abs=5)
    assert f"stopped: the SLO was broken (1 users: p50 {p50:.1f} ms, SLO p50 < 10 ms)" in result.stderr
    assert (
        "No recommendation: no step met the SLO and the error limit"
        in (tmp_path / "out" / "calibration.html").read_text()
    )


def test_an_endpoint_failing_5_percent_fires_the_error_rate_stop(procs, tmp_path):
    emulator = start_emulator(procs, *variant(2, 4, 25, ModelError=0.05))
    # 1 user, 8 s: ~300 requests, ~15 failures expected; 3 or fewer (<= 1%) has a probability of 1e-4
    result, summary = calibrate(
        emulator, tmp_path, "--instances", "2", "--step-warmup", "2", "--step-time", "8"
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert summary["stop_reason"] == "error_rate" and len(summary["steps"]) == 1
    step = summary["steps"][0]
    # the step's error rate is a binomial sample of the emulator's 5%: within 5 standard deviations
    # of it for the step's own request count (fewer requests when the machine is busy)
    assert step["requests"] > 50
    assert abs(step["error_rate"] - 0.05) < 5 * math.sqrt(0.05 * 0.95 / step["requests"]), step
    assert step["verdict"] == "error_rate"
    assert step["errors"] and all(error.startswith("ModelError") for error in step["errors"])
    assert step["reasons"][0].startswith("error rate ") and step["reasons"][0].endswith("> 1 %")


def test_instances_from_describe_endpoint(procs, tmp_path):
    emulator = start_emulator(procs, *variant(2, 4, 25))
    moto = start_moto(procs)  # the SageMaker control plane, endpoint "ep": AllTraffic on 2 instances
    moto.create_endpoint("ep", {"AllTraffic": 2})
    env = aws_env(AWS_ENDPOINT_URL_SAGEMAKER=moto.url)
    result, summary = calibrate(emulator, tmp_path, "--max-steps", "2", *FAST_STEPS, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary["instances_source"] == "DescribeEndpoint" and summary["instances"] == 2
    assert summary["settings"]["instances"] == {"AllTraffic": 2}
    assert summary["stop_reason"] == "max_steps" and len(summary["steps"]) == 2
    assert summary["max_rps_per_instance"] == pytest.approx(summary["max_sustainable_rps"] / 2, abs=0.01)
    assert "calibration: instances from DescribeEndpoint ({'AllTraffic': 2})" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "locust: error: --instances: the runtime API is http://127.0.0.1:"),
        (
            ["--instances", "2", "--slo", "error_rate<1%"],
            "locust: error: --slo: 'error_rate<1%': an SLO is a latency bound",
        ),
        (
            ["--instances", "2", "--slo", "p99<300"],
            "locust: error: --slo: 'p99<300': p99 is a latency: give its unit",
        ),
        (
            ["--instances", "2", "--max-error-rate", "0.01"],
            "locust: error: --max-error-rate: '0.01': give a percentage, e.g. 1%",
        ),
        (
            ["--instances", "2", "--step-factor", "1"],
            "locust: error: --step-factor: 1 must be between 1.1 and 10",
        ),
        (["--instances", "0"], "locust: error: --instances: 0 must be at least 1"),
        (
            ["--instances", "2", "--reset-stats"],
            "locust: error: --reset-stats: cannot be used with --calibrate",
        ),
    ],
)
def test_bad_calibration_options_exit_2_before_any_load(procs, tmp_path, args, message):
    emulator = start_emulator(procs, *variant(1, 4, 25))
    result, summary = calibrate(emulator, tmp_path, *args, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and summary is None
    assert emulator.stats()["requests"] == 0


def test_calibrate_help_lists_its_options():
    result = subprocess.run(
        [str(BIN / "smload"), "calibrate", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for option in (
        "--slo",
        "--max-error-rate",
        "--safety-factor",
        "--instances",
        "--step-warmup",
        "--output",
        "--endpoint-name",
        "--check",
    ):
        assert option in result.stdout


def test_calibration_by_rate_finds_the_capacity_as_a_rate(procs, tmp_path):
    """``--mode rate`` (open loop, constant arrivals) on the lognormal endpoint (268 req/s): the knee,
    a rate, within 5% of the capacity, found through an overloaded step; the same outputs (calibration.json,
    the policy). The other two configurations and the times are in bench/RESULTS.md."""
    emulator = start_emulator(procs, *variant(3, 2, 20, 60))
    expected = capacity(3, 2, 20, 60)
    result, summary = calibrate(
        emulator,
        tmp_path,
        "--instances",
        "3",
        "--slo",
        "p99<2s",
        "--mode",
        "rate",
        "--max-in-flight",
        "64",
        *FAST_STEPS,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert summary["stop_reason"] == "overloaded" and summary["settings"]["mode"] == "rate"
    assert summary["knee"]["rate"] == pytest.approx(expected, rel=0.05), summary["steps"]
    assert summary["max_sustainable_rps"] == pytest.approx(expected, rel=0.05)
    overloaded = [s for s in summary["steps"] if s["verdict"] == "overloaded"]
    assert overloaded and all(s["offered_rps"] > s["rps"] for s in overloaded)
    policy = json.loads((tmp_path / "out" / "scaling-policy-AllTraffic-invocations.json").read_text())
    assert policy["TargetValue"] == summary["recommended_invocations_per_instance"]
