"""The HTML reports in a real headless Chromium: no console or page errors, no request leaves the
file (it works offline), every chart is drawn and carries the data of the JSON it was made from.
Screenshots are kept under test-artifacts/. The data comes from the calibration search driven by
a queueing model (tests/endpoint_model.py); real runs are rendered by test_calibration_emulator.py."""

import json

from testkit.endpoint_model import ClosedLoopEndpoint, run
from testkit.support import ARTIFACTS, render_in_chromium

from smload.calibration.search import Instances, Search, SearchRules, summarize
from smload.measure.histogram import Histogram
from smload.results import reports
from smload.results.checks import Observed, evaluate, parse_all


def assert_clean(page):
    errors = [m for m in page["console"] if m["type"] in ("error", "warning")]
    assert errors == [] and page["pageErrors"] == [], (errors, page["pageErrors"])
    assert page["requests"] == []  # nothing fetched from the network: no CDN
    for chart in page["charts"]:
        assert chart["drawn"] and chart["inked"] > 1000, chart["id"]


def points(chart, label):
    return next(d["data"] for d in chart["datasets"] if d["label"] == label)


def calibration_summary(**settings):
    endpoint = ClosedLoopEndpoint(
        slots=8,
        service_ms=25,
        overhead_ms=2,
        endpoint="ab-test",
        variants=(("variant-a", 0.7), ("variant-b", 0.3)),
    )
    search = run(Search(SearchRules(**settings)), endpoint)
    return summarize(
        search,
        Instances("--instances", each=1),
        0.5,
        "ab-test",
        "us-east-1",
        {"endpoint_url": "http://127.0.0.1:8080", "workers": 2},
        "2025-01-01T00:00:00Z",
        120.0,
    )


def test_calibration_report_renders_its_charts_with_the_step_data(tmp_path):
    summary = calibration_summary(slos=tuple(parse_all("p99<60ms")))
    written = reports.write_calibration(tmp_path, summary)
    assert json.loads((tmp_path / "calibration.json").read_text()) == summary
    assert {p.name for p in written} >= {
        "calibration.json",
        "calibration.html",
        "scaling-policy-variant-a-invocations.json",
    }

    page = render_in_chromium(tmp_path / "calibration.html", ARTIFACTS / "calibration-report.png")
    assert_clean(page)
    assert page["title"] == "Calibration of ab-test"
    charts = {c["id"]: c for c in page["charts"]}
    assert set(charts) == {"latency-vs-throughput", "throughput-vs-users", "steps-over-time"}

    steps = sorted(summary["steps"], key=lambda s: (s["users"], s["index"]))
    latency = charts["latency-vs-throughput"]
    for label in ("p50", "p90", "p95", "p99"):
        assert [(p["x"], p["y"], p["users"]) for p in points(latency, label)] == [
            (s["rps"], s[f"{label}_ms"], s["users"]) for s in steps
        ]
    slo = points(latency, "SLO p99<60ms")
    assert [p["y"] for p in slo] == [60, 60]
    knee = summary["knee"]
    assert [p["x"] for p in points(latency, f"knee ({knee['users']} users)")] == [knee["rps"], knee["rps"]]

    throughput = charts["throughput-vs-users"]
    assert [(p["x"], p["y"]) for p in points(throughput, "achieved req/s")] == [
        (s["users"], s["rps"]) for s in steps
    ]
    over_time = charts["steps-over-time"]
    in_order = sorted(summary["steps"], key=lambda s: s["index"])
    assert [p["y"] for p in points(over_time, "req/s (measured window)")] == [s["rps"] for s in in_order]
    assert [p["y"] for p in points(over_time, "users")][::2] == [s["users"] for s in in_order]


def test_calibration_report_without_a_recommendation_says_why(tmp_path):
    summary = calibration_summary(slos=tuple(parse_all("p99<5ms")))
    reports.write_calibration(tmp_path, summary)
    html = (tmp_path / "calibration.html").read_text()
    assert "No recommendation: no step met the SLO and the error limit" in html
    assert "the SLO was broken" in html
    page = render_in_chromium(tmp_path / "calibration.html", ARTIFACTS / "calibration-report-slo-broken.png")
    assert_clean(page)


def histogram(*values):
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def test_run_report_renders_per_name_errors_and_checks(tmp_path):
    a = reports.NameStats(
        "InvokeEndpoint", "ab-test/variant-a", 700, 14, 70.0, histogram(*[20.0] * 686, *[900.0] * 14)
    )
    b = reports.NameStats("InvokeEndpoint", "ab-test/variant-b", 300, 0, 30.0, histogram(*[30.0] * 300))
    total = reports.NameStats(
        "", "all", 1000, 14, 100.0, histogram(*[20.0] * 686, *[900.0] * 14, *[30.0] * 300)
    )
    results = evaluate(
        parse_all("p95<300ms; error_rate<1%"), lambda name: Observed(total.histogram, 1000, 14, 100.0)
    )
    report = reports.run_report(
        names=[a, b],
        total=total,
        failures=[
            ("ab-test/variant-a", "ModelError(500)", 10),
            ("ab-test/variant-a", "ThrottlingException", 4),
        ],
        checks=results,
        timeline={
            "seconds": list(range(10)),
            "requests": [100] * 10,
            "failures": [1] * 10,
            "users": [[0, 0], [1, 10], [10, 10]],
        },
        settings={"endpoint_name": "ab-test", "check": ["p95<300ms", "error_rate<1%"]},
        started_at="2025-01-01T00:00:00Z",
        duration_s=10.0,
        users=10,
        workers=2,
        endpoint="ab-test",
    )
    assert report["error_types"] == {"ModelError": 10, "ThrottlingException": 4}
    assert report["checks_passed"] is False
    reports.write_run(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text()) == report

    page = render_in_chromium(tmp_path / "report.html", ARTIFACTS / "run-report.png")
    assert_clean(page)
    charts = {c["id"]: c for c in page["charts"]}
    assert set(charts) == {"latency-percentiles", "errors-by-type", "throughput-over-time"}
    bars = charts["latency-percentiles"]
    assert bars["labels"] == ["p50", "p90", "p95", "p99", "p99.9"]
    assert [d["label"] for d in bars["datasets"]] == ["ab-test/variant-a", "ab-test/variant-b"]
    assert bars["datasets"][0]["data"] == [report["names"][0][f"{p}_ms"] for p in bars["labels"]]
    errors = charts["errors-by-type"]
    assert errors["labels"] == ["ModelError", "ThrottlingException"] and errors["datasets"][0]["data"] == [
        10,
        4,
    ]
    assert [p["y"] for p in points(charts["throughput-over-time"], "requests/s")] == [100] * 10


def test_calibration_report_with_a_recommendation_but_no_knee(tmp_path):
    """--max-users reached before the endpoint saturated: a recommendation from the best step, no knee,
    hence no concurrency policy (found by the container test of `smload calibrate`)."""
    summary = calibration_summary(slos=tuple(parse_all("p99<5s")), max_users=4)
    assert summary["knee"] is None and summary["recommendation"]
    assert all("concurrency_high_resolution" not in v for v in summary["recommendation"]["variants"].values())
    reports.write_calibration(tmp_path, summary)
    html = (tmp_path / "calibration.html").read_text()
    assert "SageMakerVariantInvocationsPerInstance" in html and "high resolution" not in html
