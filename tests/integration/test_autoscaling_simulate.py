"""``smload autoscaling simulate`` as a user runs it: a calibration.json (made by the calibration
search from a queueing model of an endpoint of 4 slots x 25 ms, tests/testkit/endpoint_model.py),
a spike profile and the two policies calibration recommends. Bad input is one line and exit 2; the
HTML report opens in headless Chromium without console errors and its charts carry strategy.json's
timelines; ``--from-cloudwatch`` reads Invocations history from moto (a local CloudWatch: no AWS
account can be reached from here)."""

import datetime
import json
import subprocess

import pytest
from testkit.endpoint_model import ClosedLoopEndpoint, run
from testkit.support import ARTIFACTS, BIN, aws_env, render_in_chromium, start_moto

from smload.calibration.search import Instances, Search, SearchRules, summarize
from smload.results.checks import parse_all

SPIKE = (
    "stages:\n  - {duration: 5m, rate: 60}\n  - {duration: 10m, rate: 300}\n  - {duration: 15m, rate: 60}\n"
)


def smload(*args, env=None, cwd=None):
    return subprocess.run(
        [str(BIN / "smload"), "autoscaling", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or aws_env(),
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulate")
    endpoint = ClosedLoopEndpoint(slots=4, service_ms=25, endpoint="scaled")
    search = run(Search(SearchRules(slos=tuple(parse_all("p99<300ms")))), endpoint)
    calibration = summarize(search, Instances("--instances", each=1), 0.5, "scaled", "us-east-1")
    (root / "calibration.json").write_text(json.dumps(calibration))
    (root / "spike.yaml").write_text(SPIKE)
    return root


@pytest.fixture(scope="module")
def simulated(files):
    out = files / "out"
    done = smload(
        "simulate",
        "--calibration",
        files / "calibration.json",
        "--profile",
        files / "spike.yaml",
        "--startup-time",
        "2m",
        "--instance-price",
        "1.5",
        "--output",
        out,
    )
    assert done.returncode == 0, done.stderr
    return done, json.loads((out / "strategy.json").read_text()), out


def test_the_high_resolution_policy_wins_a_spike_and_the_reason_says_why(simulated):
    done, doc, _ = simulated
    assert doc["kind"] == "autoscaling-strategy" and (doc["endpoint"], doc["variant"]) == (
        "scaled",
        "AllTraffic",
    )
    assert doc["ranking"] == [
        "scaling-policy-AllTraffic-concurrency",
        "scaling-policy-AllTraffic-invocations",
    ]
    by_name = {p["name"]: p for p in doc["policies"]}
    fast, slow = (
        by_name["scaling-policy-AllTraffic-concurrency"],
        by_name["scaling-policy-AllTraffic-invocations"],
    )
    assert fast["events"][0]["time"] < slow["events"][0]["time"]  # 3 x 10 s against 3 x 60 s
    assert fast["summary"]["slo_violating_minutes"] < slow["summary"]["slo_violating_minutes"]
    assert fast["summary"]["cost"] == pytest.approx(fast["summary"]["instance_hours"] * 1.5, abs=1e-3)
    rec = doc["recommendation"]
    assert rec["policy"] == "scaling-policy-AllTraffic-concurrency"
    assert (
        f"{fast['summary']['slo_violating_minutes']} of 30, against {slow['summary']['slo_violating_minutes']}"
        in rec["reason"]
    )
    assert any("register-scalable-target" in c and "--max-capacity 4" in c for c in rec["commands"])
    assert f"Recommendation: {rec['policy']}: {rec['reason']}." in done.stdout
    assert doc["traffic"]["requests"] == 60 * 300 + 300 * 600 + 60 * 900


def test_the_report_opens_in_chromium_and_its_charts_carry_the_timelines(simulated):
    _, doc, out = simulated
    page = render_in_chromium(out / "strategy.html", ARTIFACTS / "autoscaling-strategy.png")
    errors = [m for m in page["console"] if m["type"] in ("error", "warning")]
    assert errors == [] and page["pageErrors"] == [] and page["requests"] == []
    charts = {c["id"]: c for c in page["charts"]}
    assert set(charts) == {"instances-all", "load-0", "latency-0", "load-1", "latency-1"}
    for chart in charts.values():
        assert chart["drawn"] and chart["inked"] > 1000, chart["id"]

    def points(chart, label):
        return [(p["x"], p["y"]) for p in next(d["data"] for d in chart["datasets"] if d["label"] == label)]

    for i, policy in enumerate(doc["policies"]):
        timeline = policy["timeline"]
        minutes = [t / 60 for t in timeline["t"]]
        assert points(charts[f"load-{i}"], "instances") == list(
            zip(minutes, timeline["instances"], strict=True)
        )
        assert points(charts[f"load-{i}"], "offered req/s") == list(
            zip(minutes, timeline["rate"], strict=True)
        )
        assert points(charts[f"latency-{i}"], "p99 ms") == list(zip(minutes, timeline["p99_ms"], strict=True))
        assert points(charts[f"latency-{i}"], "errors") == list(zip(minutes, timeline["errors"], strict=True))
        assert points(charts["instances-all"], f"instances: {policy['name']}") == list(
            zip(minutes, timeline["instances"], strict=True)
        )
    slo = points(charts["latency-0"], "SLO p99<300ms")
    assert [y for _, y in slo] == [300, 300]


POLICY_OK = {
    "TargetValue": 4800.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
}


@pytest.mark.parametrize(
    "case, files_and_args, message",
    [
        (
            "negative TargetValue",
            ({"p.json": dict(POLICY_OK, TargetValue=-1)}, ["--policy", "p.json"]),
            "--policy p.json: TargetValue must be a number above 0",
        ),
        (
            "unknown key",
            ({"p.json": dict(POLICY_OK, TargetValu=1)}, ["--policy", "p.json"]),
            'Unknown parameter in input: "TargetValu"',
        ),
        (
            "a metric of another service",
            (
                {
                    "p.json": {
                        "TargetValue": 50.0,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                        },
                    }
                },
                ["--policy", "p.json"],
            ),
            "does not scale a production variant",
        ),
        (
            "negative rates",
            ({"neg.yaml": "stages:\n  - {duration: 1m, rate: -5}\n"}, ["--profile", "neg.yaml"]),
            "--profile: neg.yaml: stage 1: the rate must be between 0 and 10,000,000",
        ),
        (
            "calibration of another endpoint",
            ({}, ["--from-cloudwatch", "other-endpoint"]),
            "--calibration: calibration.json measured endpoint 'scaled', not 'other-endpoint'",
        ),
        (
            "not a calibration",
            ({"c.json": {"endpoint": "x"}}, ["--calibration", "c.json"]),
            "--calibration: not a calibration.json",
        ),
        (
            "a variant it did not measure",
            ({}, ["--variant", "B"]),
            "--variant: 'B' is not in the calibration",
        ),
        (
            "min above max",
            ({}, ["--min-capacity", "5", "--max-capacity", "2"]),
            "min capacity (5) <= max capacity (2)",
        ),
        (
            "an SLO that is no latency",
            ({}, ["--slo", "error_rate<1%"]),
            "--slo: 'error_rate<1%': give a latency percentile",
        ),
        (
            "a bad duration",
            ({}, ["--startup-time", "soon"]),
            "argument --startup-time: 'soon' is not a duration",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(files, tmp_path, case, files_and_args, message):
    written, extra = files_and_args
    for name, content in written.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    (tmp_path / "calibration.json").write_text((files / "calibration.json").read_text())
    args = ["simulate", "--calibration", "calibration.json", "--output", "out"]
    if "--profile" not in extra and "--from-cloudwatch" not in extra:
        args += ["--profile", str(files / "spike.yaml")]
    if "--calibration" in extra:
        args = [a for a in args if a not in ("--calibration", "calibration.json")]
    env = aws_env(AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:9")  # nothing listens: nothing may be called
    done = smload(*args, *extra, env=env, cwd=tmp_path)
    assert done.returncode == 2, (case, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr, (case, done.stderr)
    assert not (tmp_path / "out").exists()


def test_traffic_from_cloudwatch_invocations(files, procs, tmp_path):
    moto = start_moto(procs)
    cloudwatch = moto.client("cloudwatch")
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    per_minute = [600.0] * 20 + [18000.0] * 10 + [600.0] * 30  # 10 req/s, a 10-minute peak of 300 req/s
    start = now - datetime.timedelta(minutes=len(per_minute) + 1)
    dimensions = [{"Name": "EndpointName", "Value": "scaled"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    for i, value in enumerate(per_minute):
        cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": dimensions,
                    "Value": value,
                    "Unit": "None",
                    "Timestamp": start + datetime.timedelta(minutes=i, seconds=5),
                }
            ],
        )
    env = aws_env(**moto.env())
    done = smload(
        "simulate",
        "--calibration",
        files / "calibration.json",
        "--from-cloudwatch",
        "scaled",
        "--days",
        "0.1",
        "--region",
        "us-east-1",
        "--output",
        tmp_path / "cw",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    traffic = json.loads((tmp_path / "cw" / "strategy.json").read_text())["traffic"]
    assert traffic["source"].startswith("CloudWatch Invocations of scaled/AllTraffic")
    assert traffic["requests"] == sum(per_minute) and traffic["peak_rps"] == 300.0
