"""Every way a test can stop, with default options: the endpoint's count = succeeded + failed +
abandoned, exactly (hardening issue, items 2-5). Requests take 300 ms at the emulator, so that some
are always in flight when a stop comes. The emulator's count is read once it has nothing in flight."""

from __future__ import annotations

import json
import signal
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest
from testkit.support import (
    Emulator,
    answers,
    distributed_args,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    run_locust,
    start_emulator,
    wait_until,
)

SLOW = ("--endpoint", "ep", "--variant", "name=v,instances=1,concurrency=64,latency_ms=300")


@pytest.fixture
def payload(tmp_path) -> Path:
    body = tmp_path / "body.json"
    body.write_text('{"inputs": [1]}')
    return body


def endpoint_args(emulator: Emulator, payload: Path) -> list[str]:
    return [
        "--endpoint-name",
        "ep",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(payload),
    ]


def served(emulator: Emulator) -> int:
    """Requests the emulator answered (or closed), once none is in flight there."""
    wait_until(
        lambda: (
            "sagemaker_emulator_in_flight" in emulator.metrics()
            and all(
                line.endswith(" 0")
                for line in emulator.metrics().splitlines()
                if line.startswith("sagemaker_emulator_in_flight{")
            )
        ),
        30,
        "the emulator to finish",
    )
    return emulator.stats()["requests"]


def report_of(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def test_run_time_end_counts_every_request_without_options(procs, tmp_path, payload):
    """The run time is up while requests are in flight: no --stop-timeout, nothing lost."""
    emulator = start_emulator(procs, *SLOW)
    result = run_locust(
        "--headless",
        "-u",
        "12",
        "-r",
        "12",
        "-t",
        "3s",
        "--report",
        str(tmp_path / "r"),
        *endpoint_args(emulator, payload),
        *distributed_args(2),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    totals = report_of(tmp_path / "r")["totals"]
    assert totals["requests"] == served(emulator) > 50 and totals["abandoned"] == 0


SLOW_START = """
import time

from locust import User, constant, task

import smload.run.hooks  # noqa: F401 - the plugin, without an endpoint to check (nothing runs the loop)

_start = time.perf_counter()
while time.perf_counter() - _start < 2.5:  # a slow start-up: heavy imports on a busy machine
    pass


class Idle(User):
    wait_time = constant(0.5)

    @task
    def nothing(self):
        pass
"""


def test_a_slow_start_up_still_runs_the_whole_run_time(tmp_path):
    """Locust's --run-time timer counts on the event loop's clock, which stands still during the start-up:
    without the plugin bringing it to now, this run would end 2.5 s early and be called interrupted (exit 4)."""
    locustfile = tmp_path / "slow_start.py"
    locustfile.write_text(SLOW_START)
    started = time.monotonic()
    result = run_locust(
        "--headless",
        "-u",
        "1",
        "-r",
        "1",
        "-t",
        "4s",
        "--report",
        str(tmp_path / "r"),
        "--metrics-port",
        "0",
        locustfile=locustfile,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert report_of(tmp_path / "r")["incomplete"] == []
    assert took >= 2.5 + 4.0, took  # the start-up, then the whole run time


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_run_exits_4_and_says_its_checks_saw_partial_data(procs, tmp_path, payload, sig):
    """Item 4: -t 60s with passing checks, interrupted at a few seconds: not a success."""
    emulator = start_emulator(procs, *SLOW)
    master = procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "60s",
            "--check",
            "rps>=1",
            "--check",
            "p95<1s",
            "--report",
            str(tmp_path / "r"),
            *endpoint_args(emulator, payload),
            *distributed_args(2),
        ),
    )
    wait_until(lambda: emulator.stats()["requests"] >= 40, 30, "requests to flow")
    master.signal(sig)
    assert master.wait(60) == 4, master.log()[-3000:]
    log = master.log()
    assert "=== Checks === (on partial data)" in log and "incomplete: interrupted after" in log
    assert "exit code 4 (partial data: the run is incomplete)" in log
    report = report_of(tmp_path / "r")
    assert report["incomplete"] and report["incomplete"][0].startswith("interrupted after")
    assert report["totals"]["requests"] + report["totals"]["abandoned"] == served(emulator)


def test_a_web_ui_stop_is_exact(procs, tmp_path, payload):
    """The web UI's stop (and so `smload k8s stop`) while requests are in flight."""
    emulator = start_emulator(procs, *SLOW)
    web, metrics = free_port(), free_port()
    master = procs.start(
        "locust",
        locust_cmd(
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web),
            "--metrics-port",
            str(metrics),
            *endpoint_args(emulator, payload),
            *distributed_args(1),
        ),
    )
    base = f"http://127.0.0.1:{web}"
    wait_until(lambda: master.alive() and answers(f"{base}/"), 30, "the web UI")
    wait_until(
        lambda: json.loads(http_get(f"{base}/stats/requests")[1])["worker_count"] == 1, 30, "the worker"
    )
    form = urllib.parse.urlencode({"user_count": 8, "spawn_rate": 8}).encode()
    assert http_post(f"{base}/swarm", form, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 200
    wait_until(lambda: emulator.stats()["requests"] >= 40, 30, "requests to flow")
    assert http_post(f"{base}/stop")[0] == 200
    wait_until(
        lambda: json.loads(http_get(f"{base}/stats/requests")[1])["state"] == "stopped", 60, "the stop"
    )
    total = served(emulator)
    stats = json.loads(http_get(f"{base}/stats/requests")[1])
    ours = next(s["num_requests"] for s in stats["stats"] if s["name"] == "Aggregated")
    abandoned = float(
        next(
            line.split()[1]
            for line in http_get(f"http://127.0.0.1:{metrics}/metrics")[1].decode().splitlines()
            if line.startswith("locust_requests_abandoned_total")
        )
    )
    assert ours + abandoned == total and ours > 30


def test_requests_cut_off_by_the_drain_timeout_are_abandoned(procs, tmp_path, payload):
    """--drain-timeout shorter than the endpoint's latency: the ones in flight are abandoned, counted as
    such (summary, report, /metrics) and never reported later."""
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,concurrency=64,latency_ms=1200")
    # the run time ends 0.5 s into the users' third requests, which need 0.7 s more
    result = run_locust(
        "--headless",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "3s",
        "--drain-timeout",
        "0.2",
        "--report",
        str(tmp_path / "r"),
        *endpoint_args(emulator, payload),
        *distributed_args(2),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    totals = report_of(tmp_path / "r")["totals"]
    assert totals["abandoned"] > 0 and f"abandoned: {totals['abandoned']} requests" in result.stdout
    assert totals["requests"] + totals["abandoned"] == served(emulator)


def standalone(procs, emulator: Emulator, payload: Path, workers: int, *master_args: str):
    port, web = free_port(), free_port()
    master = procs.start(
        "master",
        locust_cmd(
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web),
            "--expect-workers",
            str(workers),
            *master_args,
            *endpoint_args(emulator, payload),
        ),
    )
    started = [
        procs.start(
            "worker", locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        )
        for _ in range(workers)
    ]
    return master, started, f"http://127.0.0.1:{web}"


def test_a_worker_scaled_down_mid_test_reports_what_it_sent(procs, tmp_path, payload):
    """kubectl scale: one worker gets SIGTERM while its requests are in flight; it drains and reports."""
    emulator = start_emulator(procs, *SLOW)
    master, workers, _ = standalone(
        procs,
        emulator,
        payload,
        2,
        "--headless",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "8s",
        "--report",
        str(tmp_path / "r"),
    )
    wait_until(lambda: emulator.stats()["requests"] >= 60, 30, "requests to flow")
    workers[0].signal(signal.SIGTERM)
    assert workers[0].wait(30) == 0
    assert master.wait(60) == 0, master.log()[-3000:]
    report = report_of(tmp_path / "r")
    assert report["lost_workers"] == [] and report["incomplete"] == []
    assert report["totals"]["requests"] + report["totals"]["abandoned"] == served(emulator)


def test_a_killed_worker_is_reported_lost_and_its_users_move(procs, tmp_path, payload):
    """Item 3: kill -9 of one of two workers: the run says so (summary, report, exit code 4), with an
    estimate of what it did not report; the survivors take its users at once."""
    emulator = start_emulator(procs, *SLOW)
    master, workers, web = standalone(
        procs,
        emulator,
        payload,
        2,
        "--headless",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "12s",
        "--check",
        "error_rate<1%",
        "--report",
        str(tmp_path / "r"),
    )
    wait_until(lambda: emulator.stats()["requests"] >= 60, 30, "requests to flow")
    survivor = psutil.Process(workers[1].pid)
    before = len(survivor.net_connections(kind="tcp"))
    workers[0].signal(signal.SIGKILL)
    killed_at = time.monotonic()
    # the survivor opens a connection per user it takes over (one per user with the fast client)
    wait_until(
        lambda: len(survivor.net_connections(kind="tcp")) >= before + 3, 15, "the survivor to take the users"
    )
    moved_after = time.monotonic() - killed_at
    assert master.wait(60) == 4, master.log()[-3000:]
    report = report_of(tmp_path / "r")
    (lost,) = report["lost_workers"]
    assert lost["worker"].startswith("worker ") and lost["unreported_estimate"] > 0
    assert report["incomplete"] and "went silent" in report["incomplete"][0]
    assert "exit code 4 (partial data" in master.log() and moved_after < 10


def test_a_hung_worker_is_not_charged_to_the_endpoint(procs, tmp_path, payload):
    """Item 3: a SIGSTOPped worker resumes after its requests' timeout: those timeouts are the
    generator's own stall (abandoned, said in the summary), not the endpoint's Timeout."""
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,concurrency=64,latency_ms=50")
    master, workers, _ = standalone(
        procs,
        emulator,
        payload,
        2,
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "14s",
        "--request-timeout",
        "2",
        "--report",
        str(tmp_path / "r"),
    )
    wait_until(lambda: emulator.stats()["requests"] >= 60, 30, "requests to flow")
    workers[0].signal(signal.SIGSTOP)
    time.sleep(4)  # the stall under test, longer than the 2 s request timeout (not a synchronisation)
    workers[0].signal(signal.SIGCONT)
    master.wait(60)
    report = report_of(tmp_path / "r")
    assert "Timeout" not in report["error_types"], report["errors"]
    assert "generator stalled: worker" in master.log()
    assert report["totals"]["requests"] + report["totals"]["abandoned"] == served(emulator)


def test_workers_of_a_dead_parent_die_with_it(procs, payload, tmp_path):
    """Item 5: SIGKILL of a --processes parent: its workers stop at once (they would send for 60 s);
    and SIGTERM to a parent whose workers never connected leaves none behind."""
    emulator = start_emulator(procs, *SLOW)
    parent = procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "60s",
            *endpoint_args(emulator, payload),
            *distributed_args(2),
        ),
    )
    wait_until(lambda: emulator.stats()["requests"] >= 40, 30, "requests to flow")
    children = psutil.Process(parent.pid).children()
    assert len(children) == 2
    parent.signal(signal.SIGKILL)
    wait_until(
        lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children),
        10,
        "the workers to die with their parent",
    )
    count = served(emulator)
    assert emulator.stats()["requests"] == count  # nothing more arrives

    unreachable = str(free_port())  # the forked workers look for their master where there is none
    lonely = procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "-u",
            "2",
            "-t",
            "60s",
            "--processes",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(free_port()),
            "--master-port",
            unreachable,
            *endpoint_args(emulator, payload),
        ),
    )
    wait_until(lambda: len(psutil.Process(lonely.pid).children()) == 2, 30, "the forked workers")
    orphans = psutil.Process(lonely.pid).children()
    lonely.signal(signal.SIGTERM)
    lonely.wait(30)
    wait_until(
        lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in orphans),
        10,
        "the unconnected workers to die with their parent",
    )
