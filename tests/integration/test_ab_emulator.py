"""A/B statistics in real runs: Locust with the bundled locustfile against emulators whose variants'
latencies and weights are known, so that what the comparison and the split check say can be held
against the truth; ``smload compare`` over the report.json files of real runs. The variants'
weights from DescribeEndpoint come from moto's SageMaker control plane (AWS cannot be reached
from here, and moto speaks its API)."""

from __future__ import annotations

import json
import math
import subprocess
from statistics import NormalDist

import pytest
from testkit.support import (
    ARTIFACTS,
    BIN,
    REPO,
    aws_env,
    render_in_chromium,
    run_locust,
    start_emulator,
    start_moto,
)

from smload.invoke import aws, control_plane
from smload.measure.histogram import Histogram
from smload.results import compare

PAYLOAD = str(REPO / "locust" / "payloads" / "small.json")
Z99 = NormalDist().inv_cdf(0.99)


def variant(name: str, weight: float, median_ms: float, slots: int = 64) -> str:
    """A variant with a lognormal latency, p99 three times the median (the emulator's lognormal through
    both), and slots enough that no request queues."""
    return (
        f"      - {{name: {name}, weight: {weight}, instances: {slots // 16}, concurrency: 16, "
        f"latency: {{median_ms: {median_ms}, p99_ms: {3 * median_ms}}}}}\n"
    )


def config(tmp_path, name: str, endpoint: str, *variants: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"endpoints:\n  - name: {endpoint}\n    variants:\n" + "".join(variants))
    return str(path)


def true_value(median_ms: float, statistic: str) -> float:
    """The emulator's lognormal (median, p99 = 3 x median) at a statistic."""
    sigma = math.log(3) / Z99
    if statistic == "mean":
        return median_ms * math.exp(sigma * sigma / 2)
    return median_ms * math.exp(sigma * NormalDist().inv_cdf(float(statistic[1:]) / 100))


def load_test(emulator, endpoint: str, *args: str, users: int, seconds: int):
    return run_locust(
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--endpoint-name",
        endpoint,
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        PAYLOAD,
        *args,
        timeout=180,
    )


def test_variants_of_known_latency_compared_with_intervals_that_cover_the_truth(procs, tmp_path):
    """20 ms vs 22 ms medians, 70/30: with at least 5,000 requests of each, p50, p95 and the mean are
    found different, and the intervals cover the true differences (the model's: both variants share
    the network and the client, whose time cancels out of a difference). The 95% intervals are the
    report's; that they cover is asserted at 99.9% from the same histograms, since a 95% interval
    misses by design once in twenty (the simulations of tests/unit/test_ab_statistics.py measure that
    rate). The split is the emulator's 70/30, and its counts are the emulator's exactly."""
    emulator = start_emulator(
        procs,
        "--config",
        config(tmp_path, "ab", "ab", variant("variant-a", 0.7, 20), variant("variant-b", 0.3, 22)),
    )
    report_dir = tmp_path / "report"
    result = load_test(
        emulator,
        "ab",
        "--report",
        str(report_dir),
        "--check",
        "p50[ab/variant-b] - p50[ab/variant-a] < 1ms",
        "--check",
        "p95[ab/variant-b] - p95[ab/variant-a] < 20ms",
        users=50,
        seconds=18,
    )
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]  # the 2 ms difference
    report = json.loads((report_dir / "report.json").read_text())
    names = {n["name"]: n for n in report["names"]}
    assert min(names["ab/variant-a"]["requests"], names["ab/variant-b"]["requests"]) >= 5000, names

    rows = {r["metric"]: r for r in report["comparison"]}
    assert set(rows) == {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "error_rate"}
    for metric in ("p50_ms", "p95_ms", "mean_ms"):
        row = rows[metric]
        assert (row["baseline"], row["candidate"]) == ("ab/variant-a", "ab/variant-b")
        assert row["significant"] and row["ci_low"] > 0, row
        assert row["verdict"].startswith("ab/variant-b is slower than ab/variant-a at ")
    # the sample sizes are for the differences the checks name, else 5% of the baseline
    assert (rows["p50_ms"]["effect"], rows["p95_ms"]["effect"]) == (1.0, 20.0)
    assert rows["mean_ms"]["effect"] == pytest.approx(0.05 * rows["mean_ms"]["baseline_value"], rel=1e-3)
    samples = [
        compare.Sample(
            n["name"],
            n["requests"],
            n["failures"],
            {k: Histogram.from_wire(w) for k, w in n["histograms"].items()},
        )
        for n in (names["ab/variant-a"], names["ab/variant-b"])
    ]
    for row in compare.compare(*samples, confidence=0.999):
        if row.is_rate:
            assert row.ci_low <= 0 <= row.ci_high  # neither variant fails
            continue
        truth = true_value(22, row.statistic) - true_value(20, row.statistic)
        assert row.ci_low <= truth <= row.ci_high, (row.metric, truth, row.ci_low, row.ci_high)

    server = emulator.stats()["endpoints"]["ab"]["variants"]
    split = report["split"]
    assert split["ok"] is True and split["source"] == "the emulator's configuration"
    assert split["expected"] == {"variant-a": 0.7, "variant-b": 0.3}
    assert split["counts"] == {v: s["requests"] for v, s in server.items()}
    assert "variants compared (candidate - baseline, 95% confidence intervals):" in result.stdout
    assert (
        f"traffic split OK: variant-a {split['observed']['variant-a']:.1%} (expected 70.0%)" in result.stdout
    )
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["p50[ab/variant-b] - p50[ab/variant-a] < 1ms"]["passed"] is False
    assert checks["p95[ab/variant-b] - p95[ab/variant-a] < 20ms"]["passed"] is True

    page = render_in_chromium(report_dir / "report.html", ARTIFACTS / "run-report-ab.png")
    assert page["pageErrors"] == [] and [m for m in page["console"] if m["type"] == "error"] == []
    chart = next(c for c in page["charts"] if c["id"] == "comparison-intervals")
    assert chart["drawn"] and chart["labels"] == [
        f"ab/variant-b vs ab/variant-a: {m}" for m in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")
    ]


def test_a_60_40_endpoint_tested_against_an_expected_70_30_is_flagged(procs, tmp_path):
    emulator = start_emulator(
        procs,
        "--config",
        config(tmp_path, "misrouted", "ab", variant("variant-a", 0.6, 20), variant("variant-b", 0.4, 20)),
    )
    report_dir = tmp_path / "report"
    result = load_test(
        emulator,
        "ab",
        "--report",
        str(report_dir),
        "--expected-split",
        "variant-a=0.7,variant-b=0.3",
        "--baseline-variant",
        "variant-b",
        users=10,
        seconds=4,
    )
    assert result.returncode == 0, result.stderr[-3000:]  # a warning, not a failed check
    report = json.loads((report_dir / "report.json").read_text())
    assert {(r["baseline"], r["candidate"]) for r in report["comparison"]} == {
        ("ab/variant-b", "ab/variant-a")
    }
    split = report["split"]
    assert split["ok"] is False and split["p_value"] < 1e-6 and split["source"] == "--expected-split"
    assert split["requests"] > 1000 and 0.55 < split["observed"]["variant-a"] < 0.65
    warning = next(line for line in result.stdout.splitlines() if line.startswith("traffic split"))
    assert warning.startswith(
        "traffic split WARNING: the observed split is not the expected one (chi-square p = "
    )
    assert f"variant-a {split['observed']['variant-a']:.1%} (expected 70.0%)" in warning


def test_smload_compare_gates_nightly_runs(procs, tmp_path):
    """Two runs of one endpoint pass a p95<5% gate (exit 0); a run of the same endpoint 15% slower at
    every quantile fails it (exit 3), its intervals shown. 100 ms with a narrow spread (p99 = 1.5 x
    the median): 5% is 6.6 ms at p95, beyond what another process's CPU can add to a run here."""

    def nightly(name: str, median_ms: float):
        return start_emulator(
            procs,
            "--config",
            config(
                tmp_path,
                name,
                "nightly",
                f"      - {{name: AllTraffic, instances: 8, concurrency: 16, latency: {{median_ms: {median_ms}, "
                f"p99_ms: {1.5 * median_ms}}}}}\n",
            ),
        )

    today, slower = nightly("today", 100), nightly("slower", 115)
    runs = {}
    for run, emulator in (("monday", today), ("tuesday", today), ("slower", slower)):
        runs[run] = tmp_path / run
        result = load_test(emulator, "nightly", "--report", str(runs[run]), users=100, seconds=6)
        assert result.returncode == 0, result.stderr[-3000:]
    gates = ["--max-regression", "p95<5%", "--max-regression", "error_rate<0.1pp"]

    def smload_compare(*args):
        return subprocess.run(
            [str(BIN / "smload"), "compare", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
            env=aws_env(),
        )

    same = smload_compare(runs["monday"], runs["tuesday"], *gates)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines()[-1] == "exit code 0"
    worse = smload_compare(runs["monday"], runs["slower"] / "report.json", *gates)
    assert worse.returncode == 3, worse.stdout + worse.stderr
    (line,) = [line for line in worse.stdout.splitlines() if "REGRESSION" in line]
    assert line.startswith("  p95 < 5%") and "nightly/AllTraffic: +" in line and "95% CI +" in line
    row = next(line for line in worse.stdout.splitlines() if line.strip().startswith("p95_ms"))
    assert " to +" in row and "slower" in row
    mismatch = smload_compare(runs["monday"], runs["slower"], "--max-regression", "p95<5")
    assert mismatch.returncode == 2 and mismatch.stderr.count("\n") == 1 and mismatch.stdout == ""


@pytest.fixture
def moto_weights(procs, monkeypatch):
    """moto's SageMaker control plane with endpoint "ab": variant-a and variant-b weighted 3:2."""
    moto = start_moto(procs)
    sagemaker = moto.client("sagemaker")
    sagemaker.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": w,
            }
            for v, w in (("variant-a", 3.0), ("variant-b", 2.0))
        ],
    )
    sagemaker.create_endpoint(EndpointName="ab", EndpointConfigName="c")
    for key, value in aws_env(AWS_ENDPOINT_URL_SAGEMAKER=moto.url).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    return moto


def test_variant_weights_from_describe_endpoint_or_the_emulator(procs, tmp_path, moto_weights, monkeypatch):
    """The weights a run tests its split against: DescribeEndpoint's CurrentWeight when a control plane
    is set (moto here), the emulator's own configuration when the runtime URL is an emulator's."""

    class Settings:
        endpoint_name, region, endpoint_url = (
            "ab",
            "us-east-1",
            "https://runtime.sagemaker.us-east-1.amazonaws.com",
        )

    weights, source = control_plane.variant_weights(aws.session(), Settings)
    assert (weights, source) == ({"variant-a": 3.0, "variant-b": 2.0}, "DescribeEndpoint (CurrentWeight)")
    Settings.endpoint_name = "nope"
    with pytest.raises(LookupError, match="DescribeEndpoint 'nope' failed"):
        control_plane.variant_weights(aws.session(), Settings)

    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER")  # no control plane: an emulator's URL is asked itself
    emulator = start_emulator(
        procs,
        "--config",
        config(tmp_path, "e", "ab", variant("variant-a", 0.7, 20), variant("variant-b", 0.3, 20)),
    )

    class Emulated:
        endpoint_name, region, endpoint_url = "ab", "us-east-1", emulator.url
        scheme, host, port, path_prefix = "http", "127.0.0.1", emulator.port, ""

    assert control_plane.variant_weights(aws.session(), Emulated) == (
        {"variant-a": 0.7, "variant-b": 0.3},
        "the emulator's configuration",
    )
    Emulated.endpoint_name = "other"
    with pytest.raises(LookupError, match="has no endpoint 'other'"):
        control_plane.variant_weights(aws.session(), Emulated)
