"""The measurements (``smload.measure``) across real Locust processes: every request
a worker fires reaches the master's views exactly once - per name, per latency bucket, per error
type - whether the run is local, ``--processes`` or explicit ``--master``/``--worker`` processes,
over a stats reset and two tests in the same master.

The load is synthetic (``tests/locustfiles/synthetic.py`` fires Locust's request event and sends
nothing), so each process knows exactly what it fired; that record is the truth compared here.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
from testkit.support import (
    REPO,
    aws_env,
    distributed_args,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    run_locust,
    wait_until,
)

from smload.measure.histogram import Histogram
from smload.measure.series import Series

SYNTHETIC = REPO / "tests" / "locustfiles" / "synthetic.py"


def env_for(out: Path, **extra: str) -> dict[str, str]:
    return aws_env(SMLOAD_TEST_OUT=str(out), **extra)


def load(out: Path, role: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{role}-*.json"))]


def truth(books: list[dict]) -> dict[str, dict]:
    """What the workers fired, summed: requests, a histogram of latencies, bytes, failures."""
    total: dict[str, dict] = {}
    for book in books:
        for key, fired in book.items():
            entry = total.setdefault(
                key, {"requests": 0, "histogram": Histogram(), "bytes": 0, "failures": Counter()}
            )
            entry["requests"] += fired["requests"]
            for ms in fired["latencies"]:
                entry["histogram"].record(ms)
            entry["bytes"] += fired["bytes"]
            entry["failures"].update(fired["failures"])
    return total


def assert_view_is(view: dict[str, list], expected: dict[str, dict]) -> None:
    assert sorted(view) == sorted(expected)
    for key, wire in view.items():
        series = Series.from_wire(wire)
        requests, hist, response_bytes, failures = (
            series.requests,
            series.histogram,
            series.response_bytes,
            series.failures,
        )
        want = expected[key]
        assert requests == want["requests"], key
        assert hist.counts == want["histogram"].counts, key  # bucket for bucket
        assert hist.count == want["histogram"].count, key
        assert hist.sum == pytest.approx(want["histogram"].sum), key
        assert response_bytes == want["bytes"], key
        assert dict(failures) == dict(want["failures"]), key
    assert sum(e["requests"] for e in expected.values()) > 100, "the run fired too little to prove anything"


def run_headless(tmp_path: Path, *args: str) -> tuple[dict, list[dict]]:
    out = tmp_path / "out"
    out.mkdir()
    result = run_locust(
        "--headless",
        "-u",
        "6",
        "-r",
        "6",
        "--run-time",
        "4s",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        *args,
        env=env_for(out),
        locustfile=SYNTHETIC,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (master,) = load(out, "master")
    return master, load(out, "worker")


def test_processes_workers_merge_exactly_into_the_master(tmp_path):
    master, workers = run_headless(tmp_path, *distributed_args(2))
    assert len(workers) == 2
    fired = truth([w["fired_lifetime"] for w in workers])
    assert_view_is(master["lifetime"], fired)
    assert_view_is(master["test"], fired)  # one test: the test view is the lifetime
    # Locust's own totals come in the same reports: the same count, exactly.
    assert master["locust"]["requests"] == sum(e["requests"] for e in fired.values())
    assert master["locust"]["failures"] == sum(sum(e["failures"].values()) for e in fired.values())


def test_local_runner_has_the_same_views(tmp_path):
    master, workers = run_headless(tmp_path)
    assert workers == []
    fired = truth([master["fired_lifetime"]])
    assert_view_is(master["lifetime"], fired)
    assert_view_is(master["test"], fired)
    assert master["locust"]["requests"] == sum(e["requests"] for e in fired.values())


def test_two_tests_and_a_stats_reset_in_one_master(procs, tmp_path):
    """Explicit --master and two --worker processes, driven through the web UI like a user would:
    test 1, Locust's stats reset, stop; test 2, stop. The test view follows the current test, the
    lifetime view keeps everything, and Locust's reset touches neither."""
    out = tmp_path / "out"
    out.mkdir()
    env = env_for(out)
    master_port, web_port = free_port(), free_port()
    master = procs.start(
        "master",
        locust_cmd(
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
            locustfile=SYNTHETIC,
        ),
        env=env,
    )
    for _ in range(2):
        procs.start(
            "worker",
            locust_cmd(
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(master_port),
                locustfile=SYNTHETIC,
            ),
            env=env,
        )
    web = f"http://127.0.0.1:{web_port}"

    def views() -> dict:
        status, body = http_get(f"{web}/smload-test/views")
        assert status == 200, body
        return json.loads(body)

    def total(view: dict) -> int:
        return sum(series[0] for series in view.values())

    def workers_ready() -> bool:
        try:
            status, body = http_get(f"{web}/stats/requests")
        except OSError:
            return False
        return status == 200 and json.loads(body)["workers"] and len(json.loads(body)["workers"]) == 2

    wait_until(workers_ready, 30, "two workers connected to the master")
    seen = []
    for test in (1, 2):
        status, body = http_post(
            f"{web}/swarm",
            b"user_count=6&spawn_rate=6",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200 and json.loads(body)["success"], body
        wait_until(lambda: total(views()["test"]) > 300, 30, f"test {test} to record 300 requests")
        if test == 1:
            assert http_post(f"{web}/stats/reset")[0] == 200
            after_reset = total(views()["lifetime"]) + 100
            wait_until(lambda: total(views()["test"]) > after_reset, 30, "requests after the reset")  # noqa: B023
        assert http_post(f"{web}/stop")[0] == 200
        wait_until(lambda: views()["state"] == "stopped", 30, f"test {test} to stop")
        seen.append(views())
    # the test view restarted with test 2; the lifetime view only grew, and holds both tests
    assert total(seen[1]["lifetime"]) == total(seen[0]["lifetime"]) + total(seen[1]["test"])
    assert total(seen[0]["test"]) == total(seen[0]["lifetime"])
    # Locust's own stats were reset during test 1 (and cleared for test 2): ours were not
    assert seen[0]["locust"]["requests"] < total(seen[0]["lifetime"])

    master.stop()  # SIGTERM: the master tells the workers to quit; everyone writes what they know
    wait_until(lambda: len(load(out, "worker")) == 2 and len(load(out, "master")) == 1, 30, "the dumps")
    workers = load(out, "worker")
    (final,) = load(out, "master")
    assert_view_is(final["lifetime"], truth([w["fired_lifetime"] for w in workers]))
    assert_view_is(final["test"], truth([w["fired_test"] for w in workers]))
    assert final["locust"]["requests"] == total(final["test"])  # Locust clears its stats per test too
