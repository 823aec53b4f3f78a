"""``smload autoscaling verify`` against the emulator (time_scale 60: a policy minute is a second):
a real open-loop Locust run of the profile (``smload run --rate-profile``, constant arrivals) while
DescribeEndpoint is polled, then the simulation of the same policy next to what happened.

* the step profile on the bundled example: every change of the instance count within one metric
  period of the simulated one, the failed requests within 20% of the simulated count;
* a spike, once under a 1-minute InvocationsPerInstance policy and once under a high-resolution
  concurrency policy: ``simulate`` ranks the two as ``verify`` then observes them;
* bad input (a calibration of another endpoint) is one line, exit 2, and nothing is sent.

The calibration.json is made by the calibration search from a queueing model of the emulator's
variant (4 slots x 25 ms, tests/testkit/endpoint_model.py)."""

import json
import subprocess

import pytest
from testkit.endpoint_model import ClosedLoopEndpoint, run
from testkit.support import BIN, REPO, aws_env, start_emulator

from smload.calibration.search import Instances, Search, SearchRules, summarize
from smload.results.checks import parse_all

EXAMPLE = REPO / "emulator" / "examples" / "autoscaling.yaml"
STEP = (
    "stages:\n  - {duration: 5m, rate: 80}\n  - {duration: 10m, rate: 240}\n  - {duration: 17m, rate: 80}\n"
)
SPIKE = "stages:\n  - {duration: 5m, rate: 60}\n  - {duration: 4m, rate: 400}\n  - {duration: 6m, rate: 60}\n"
POLICIES = {
    "invocations": {
        "TargetValue": 4800.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    },
    "concurrency": {
        "TargetValue": 2.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"
        },
    },
}


def calibration(path, endpoint):
    model = ClosedLoopEndpoint(slots=4, service_ms=25, endpoint=endpoint)
    search = run(Search(SearchRules(slos=tuple(parse_all("p99<300ms")))), model)
    path.write_text(
        json.dumps(summarize(search, Instances("--instances", each=1), 0.5, endpoint, "us-east-1"))
    )
    return path


def smload(*args):
    return subprocess.run(
        [str(BIN / "smload"), "autoscaling", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=aws_env(LOCUST_METRICS_PORT="0"),
    )


def verify(emulator, endpoint, tmp, profile, calibration_file, name):
    (tmp / "one.json").write_text('{"inputs": [1, 2, 3]}')
    done = smload(
        "verify",
        "--endpoint-name",
        endpoint,
        "--endpoint-url",
        emulator.url,
        "--payload",
        tmp / "one.json",
        "--profile",
        profile,
        "--calibration",
        calibration_file,
        "--arrival",
        "constant",
        "--check",
        "error_rate<50%",
        "--output",
        tmp / name,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads((tmp / name / "verify.json").read_text())


def test_the_simulation_predicts_the_emulators_instance_timeline_and_errors(procs, tmp_path):
    emulator = start_emulator(procs, "--config", str(EXAMPLE))
    (tmp_path / "step.yaml").write_text(STEP)
    done, doc = verify(
        emulator,
        "autoscaling",
        tmp_path,
        tmp_path / "step.yaml",
        calibration(tmp_path / "calibration.json", "autoscaling"),
        "step",
    )
    comparison = doc["comparison"]
    observed = doc["observed"]["events"]
    assert [(e["from"], e["to"]) for e in observed] == [(1, 2), (2, 1)]
    assert comparison["period_s"] == 60 and comparison["all_within_period"], comparison["changes"]
    assert comparison["errors"]["within_20_percent"], comparison["errors"]
    assert comparison["errors"]["observed"] > 100  # the step overflowed one instance's queue
    # nothing lost: the emulator's count is the run's
    totals = doc["run"]["totals"]
    assert doc["observed"]["summary"]["requests"] == totals["requests"]
    assert doc["observed"]["summary"]["errors"] == totals["failures"]
    # the polled DescribeEndpoint saw the same changes (within its polling interval)
    polled = doc["observed"]["polled_events"]
    assert [(e["from"], e["to"]) for e in polled] == [(1, 2), (2, 1)]
    assert all(abs(p["time"] - e["time"]) <= 10 for p, e in zip(polled, observed, strict=True))
    # the load outgrew one instance at 300 s; the third breaching minute (the first may be partly before the
    # step: minutes are the endpoint's) ends 2-3 minutes later, and the instance starts in 2: 4-5 minutes
    lag = doc["observed"]["lags"][0]["lag_s"]
    assert 240 - 10 <= lag <= 300 + 10 and lag == pytest.approx(doc["simulated"]["lags"][0]["lag_s"], abs=10)
    assert "[ok]" in done.stdout and "DIFFERS" not in done.stdout


def test_simulate_ranks_the_policies_as_verify_observes_them(procs, tmp_path):
    calibration_file = calibration(tmp_path / "calibration.json", "spike")
    (tmp_path / "spike.yaml").write_text(SPIKE)
    files = []
    for name, policy in POLICIES.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(policy))
        files += ["--policy", tmp_path / f"{name}.json"]
    simulated = smload(
        "simulate",
        "--calibration",
        calibration_file,
        "--profile",
        tmp_path / "spike.yaml",
        *files,
        "--max-capacity",
        "4",
        "--startup-time",
        "2m",
        "--output",
        tmp_path / "strategy",
    )
    assert simulated.returncode == 0, simulated.stderr
    ranking = json.loads((tmp_path / "strategy" / "strategy.json").read_text())["ranking"]
    assert ranking == ["concurrency", "invocations"]

    observed = {}
    for name in POLICIES:
        config = EXAMPLE.read_text().replace("name: autoscaling", "name: spike")
        start = config.index("          policies:")
        config = config[:start] + f"          policies:\n            - file: {tmp_path / f'{name}.json'}\n"
        (tmp_path / f"{name}.yaml").write_text(config)
        emulator = start_emulator(procs, "--config", str(tmp_path / f"{name}.yaml"))
        _, doc = verify(
            emulator, "spike", tmp_path, tmp_path / "spike.yaml", calibration_file, f"verify-{name}"
        )
        observed[name] = doc["observed"]["summary"]
        procs.started[-1].stop()

    def key(name):
        s = observed[name]
        return (s["slo_violating_minutes"], s["errors"], s["instance_hours"])

    assert sorted(POLICIES, key=key) == ranking, observed
    assert observed["concurrency"]["errors"] < observed["invocations"]["errors"]


def test_a_calibration_of_another_endpoint_is_refused_before_any_load(procs, tmp_path):
    emulator = start_emulator(procs, "--config", str(EXAMPLE))
    (tmp_path / "step.yaml").write_text(STEP)
    (tmp_path / "one.json").write_text("{}")
    done = smload(
        "verify",
        "--endpoint-name",
        "autoscaling",
        "--endpoint-url",
        emulator.url,
        "--payload",
        tmp_path / "one.json",
        "--profile",
        tmp_path / "step.yaml",
        "--calibration",
        calibration(tmp_path / "other.json", "other-endpoint"),
        "--output",
        tmp_path / "v",
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "measured endpoint 'other-endpoint', not 'autoscaling'" in lines[0], (
        done.stderr
    )
    assert emulator.stats()["requests"] == 0
