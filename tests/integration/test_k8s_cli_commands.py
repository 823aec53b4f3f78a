"""``smload k8s status|scale|run|stop`` against the API server stand-in (``tests/k8s_standin.py``: no
Kubernetes API server can run here) serving the chart's rendered objects, with a real Locust master
and real workers behind the master Service and the emulator as the endpoint. The stand-in checks
every request (token, verb, path, label selector, patch content type and body) and records it."""

from __future__ import annotations

import json
import re

import pytest
from testkit.helmchart import MASTER, NAMESPACE, RELEASE, WORKER
from testkit.k8s_release import deploy
from testkit.support import Procs, http_get, http_post, wait_until

SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/part-of=sagemaker-loadtest"
PROXY = f"/api/v1/namespaces/{NAMESPACE}/services/{MASTER}:web/proxy/"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("k8s")
    procs = Procs(tmp)
    try:
        deployed = deploy(
            procs,
            tmp,
            workers=1,
            values={"locust": {"users": 4, "spawnRate": 4, "checks": ["error_rate<1%", "p99<10s"]}},
        )
        yield deployed
        deployed.standin.stop()
    finally:
        procs.stop_all()


@pytest.fixture(autouse=True)
def clean_record(release, request):
    release.standin.seen.clear()
    yield
    assert release.standin.unexpected == [], "smload k8s asked the API server for something it should not"
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(release.procs.dump_logs())


def finds_the_release(seen) -> None:
    """Every command starts by finding the release's objects by their labels."""
    lists = [
        (s.method, s.path, s.query.get("labelSelector", [""])[0])
        for s in seen
        if "/proxy/" not in s.path and s.method == "GET"
    ]
    assert lists[:3] == [
        ("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", SELECTOR),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/services", f"{SELECTOR},app.kubernetes.io/component=master"),
        ("GET", f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers", SELECTOR),
    ]


def test_status(release):
    result = release.smload_k8s("status", "--release", RELEASE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"release {RELEASE} in namespace {NAMESPACE}: mode deployment"
    assert lines[1] == f"master   deployment/{MASTER}: 1/1 ready"
    assert lines[2] == f"workers  deployment/{WORKER}: 1/1 ready"
    assert re.fullmatch(
        r"test     ready, 0 users on 1 workers, 0\.0 req/s, 0\.00% failed, 0 requests", lines[3]
    ), lines[3]
    seen = release.standin.seen
    finds_the_release(seen)
    assert [(s.method, s.path) for s in seen if "/proxy/" in s.path] == [("GET", PROXY + "stats/requests")]
    assert not [s for s in seen if s.method != "GET"]  # status changes nothing


def test_scale_up_then_down(release):
    result = release.smload_k8s("scale", "--release", RELEASE, "--workers", "3", "--timeout", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "3 workers connected"
    assert release.connected() == 3  # the master itself says so
    (patch,) = release.standin.requests("PATCH")
    assert patch.path == f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{WORKER}/scale"
    assert patch.content_type == "application/merge-patch+json"
    assert json.loads(patch.body) == {"spec": {"replicas": 3}}
    finds_the_release(release.standin.seen)

    release.standin.seen.clear()
    result = release.smload_k8s("scale", "--release", RELEASE, "--workers", "1", "--timeout", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert release.connected() == 1
    assert [json.loads(p.body) for p in release.standin.requests("PATCH")] == [{"spec": {"replicas": 1}}]


def test_run_a_test(release, tmp_path):
    release.emulator.reset()
    report = tmp_path / "report.html"
    result = release.smload_k8s(
        "run",
        "--release",
        RELEASE,
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--run-time",
        "4s",
        "--interval",
        "1",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("started: 4 users at 4/s for 4s on 1 workers\n")
    assert "running, 4 users on 1 workers" in result.stdout
    (swarm,) = release.standin.requests("POST")
    assert swarm.path == PROXY + "swarm"
    assert swarm.content_type == "application/x-www-form-urlencoded"
    assert dict(pair.split("=") for pair in swarm.body.decode().split("&")) == {
        "user_count": "4",
        "spawn_rate": "4.0",
        "run_time": "4s",
        "arrival_rate": "",
    }
    assert (
        report.read_text().lstrip().startswith("<!DOCTYPE html>")
        and "ab-test/variant-a" in report.read_text()
    )
    # Nothing lost: what the run reports is what the endpoint received.
    done = re.search(r"^done: (\d+) requests, (\d+) failed; report (.+)$", result.stdout, re.MULTILINE)
    assert done and int(done[1]) > 0 and done[2] == "0" and done[3] == str(report)
    assert (
        int(done[1]) == release.emulator.stats()["requests"] == release.stats()["stats"][-1]["num_requests"]
    )
    # The release's checks (locust.checks), evaluated by the master on the merged results.
    assert result.stdout.rstrip().endswith("2 of 2 checks passed"), result.stdout
    (checks,) = release.standin.requests("GET", contains="/proxy/smload/checks")
    assert checks.query["check"] == ["error_rate<1%", "p99<10s"]


def test_run_with_a_failing_check_exits_3(release, tmp_path):
    result = release.smload_k8s(
        "run",
        "--release",
        RELEASE,
        "--run-time",
        "3s",
        "--interval",
        "1",
        "--check",
        "rps>=1000000",
        "--report",
        str(tmp_path / "r.html"),
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert re.search(r"^rps >= 1000000/s +[\d.]+/s +FAIL$", result.stdout, re.MULTILINE), result.stdout
    assert "0 of 1 checks passed, 1 failed" in result.stdout


def test_run_refuses_a_bad_check_before_any_load(release):
    result = release.smload_k8s("run", "--release", RELEASE, "--run-time", "3s", "--check", "p95<300")
    assert result.returncode == 2 and result.stderr.startswith("smload k8s: error: --check: 'p95<300'"), (
        result.stderr
    )
    assert release.standin.requests("POST") == [] and release.standin.requests(contains="/proxy/") == []


def test_stop_a_running_test(release):
    release.wait_ready()
    status, body = http_post(
        f"{release.web}/swarm",
        b"user_count=2&spawn_rate=2&run_time=120s",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and json.loads(body)["success"], body
    wait_until(lambda: release.stats()["state"] == "running", 30, "the test to run")
    result = release.smload_k8s("stop", "--release", RELEASE)
    assert result.returncode == 0, result.stderr
    assert [s.path for s in release.standin.requests("POST")] == [PROXY + "stop"]
    wait_until(lambda: release.stats()["state"] == "stopped", 30, "the test to stop")


def test_run_refuses_while_a_test_runs(release):
    release.wait_ready()
    status, body = http_post(
        f"{release.web}/swarm",
        b"user_count=1&spawn_rate=1&run_time=120s",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    wait_until(lambda: release.stats()["state"] == "running", 30, "the test to run")
    try:
        result = release.smload_k8s("run", "--release", RELEASE, "--run-time", "5s")
        assert result.returncode == 2, result.stdout + result.stderr
        assert (
            f"a test is already running on '{RELEASE}': smload k8s stop --release {RELEASE} first"
            in result.stderr
        )
        assert release.standin.requests("POST") == []
    finally:
        http_post(f"{release.web}/stop")
        wait_until(lambda: release.stats()["state"] == "stopped", 30, "the test to stop")


def test_run_needs_workers(release):
    assert release.smload_k8s("scale", "--release", RELEASE, "--workers", "0").returncode == 0
    try:
        result = release.smload_k8s("run", "--release", RELEASE, "--run-time", "5s")
        assert result.returncode == 2, result.stdout + result.stderr
        assert (
            f"no worker pod of '{RELEASE}' is ready: smload k8s scale --release {RELEASE} --workers N"
            in result.stderr
        )
    finally:
        assert release.smload_k8s("scale", "--release", RELEASE, "--workers", "1").returncode == 0


def test_run_with_failed_requests_exits_1(tmp_path):
    """Every request fails (ModelError): without checks the run exits 1, like a headless Locust run."""
    procs = Procs(tmp_path)
    try:
        failing = deploy(
            procs,
            tmp_path,
            workers=1,
            variant="name=variant-a,weight=1,instances=1,concurrency=4,latency_ms=5,ModelError=1.0",
            values={"locust": {"users": 2, "spawnRate": 2, "runTime": "3s"}},
        )
        result = failing.smload_k8s(
            "run", "--release", RELEASE, "--interval", "1"
        )  # users, rate and time: the release's
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith("started: 2 users at 2/s for 3s on 1 workers\n")
        done = re.search(r"^done: (\d+) requests, (\d+) failed", result.stdout, re.MULTILINE)
        assert done and done[1] == done[2] and int(done[1]) == failing.emulator.stats()["requests"] > 0
        # With checks, the checks alone say what is acceptable (as in a headless run).
        result = failing.smload_k8s(
            "run", "--release", RELEASE, "--interval", "1", "--check", "error_rate<=100%"
        )
        assert result.returncode == 0 and "1 of 1 checks passed" in result.stdout, (
            result.stdout + result.stderr
        )
        failing.standin.stop()
    finally:
        procs.stop_all()


def test_checks_route_answers_like_the_verdict(release):
    """/smload/checks on the master itself: results as the headless verdict reports them, 400 for nonsense."""
    status, body = http_get(f"{release.web}/smload/checks?check=p95%3C300")
    assert status == 400 and json.loads(body)["error"].startswith("--check: 'p95<300'"), body
    status, body = http_get(
        f"{release.web}/smload/checks?check=error_rate%3C1%25&check=p99%5Bno%2Fsuch%5D%3C1s"
    )
    answer = json.loads(body)
    assert status == 200 and answer["passed"] is False
    (rate, unknown) = answer["results"]
    assert rate["check"] == "error_rate<1%" and rate["passed"] is True
    assert unknown["passed"] is False and unknown["note"] == "no request named 'no/such'"


def test_run_open_loop(release, tmp_path):
    """--arrival-rate: the web UI form's open-loop fields; the master runs the test open loop (its
    achieved_rate check needs one), and what it sent is what the endpoint received."""
    release.emulator.reset()
    result = release.smload_k8s(
        "run",
        "--release",
        RELEASE,
        "--arrival-rate",
        "40",
        "--max-in-flight",
        "8",
        "--run-time",
        "5s",
        "--interval",
        "1",
        "--report",
        str(tmp_path / "r.html"),
        "--check",
        "achieved_rate>=20",
        "--check",
        "dropped<=0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        "started: open loop at 40 req/s, at most 8 in flight, for 5s on 1 workers\n"
    )
    (swarm,) = release.standin.requests("POST")
    form = dict(pair.split("=") for pair in swarm.body.decode().split("&"))
    assert (form["arrival_rate"], form["max_in_flight"]) == ("40", "8")
    done = re.search(r"^done: (\d+) requests, (\d+) failed", result.stdout, re.MULTILINE)
    assert done and int(done[1]) == release.emulator.stats()["requests"] > 60
    assert result.stdout.rstrip().endswith("2 of 2 checks passed"), result.stdout
