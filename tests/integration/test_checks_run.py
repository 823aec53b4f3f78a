"""--check and --report in real Locust runs (the bundled locustfile, a real emulator): the exit code
of passing and failing checks, the table, every way of giving checks (command line, LOCUST_CHECK,
config file, the web UI form), bad expressions refused before any load, and a run report whose
counts match the emulator's exactly."""

from __future__ import annotations

import json
import re
import signal
from urllib.parse import urlencode

import pytest
from testkit.support import (
    ARTIFACTS,
    REPO,
    answers,
    aws_env,
    distributed_args,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    render_in_chromium,
    run_locust,
    start_emulator,
    wait_until,
)

PAYLOAD = str(REPO / "locust" / "payloads" / "small.json")
AB = """
endpoints:
  - name: ab
    variants:
      - {name: variant-a, weight: 0.5, instances: 1, concurrency: 8, latency: {median_ms: 10}}
      - name: variant-b
        weight: 0.5
        instances: 1
        concurrency: 8
        latency: {median_ms: 40}
        faults: {rates: {ModelError: 0.04, ThrottlingException: 0.02}, model_error_status: 500}
"""


@pytest.fixture
def emulator(procs, tmp_path):
    config = tmp_path / "ab.yaml"
    config.write_text(AB)
    return start_emulator(procs, "--config", str(config))


def endpoint_args(emulator) -> list[str]:
    return [
        "--endpoint-name",
        "ab",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        PAYLOAD,
    ]


def headless(emulator, *args, users=4, seconds=4, env=None, **kwargs):
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
        *endpoint_args(emulator),
        *args,
        env=env,
        **kwargs,
    )


def check_rows(output: str) -> dict[str, str]:
    """The checks table (printed with Locust's own tables, on stderr): canonical check -> the rest of its row."""
    block = output.split("=== Checks ===", 1)[1]
    rows = {}
    for line in block.splitlines()[3:]:
        match = re.match(r"(\S.*?)\s{2,}(\S.*)$", line)
        if match and ("PASS" in line or "FAIL" in line):
            rows[match.group(1)] = match.group(2)
    return rows


def test_failing_checks_exit_3_with_a_table_in_a_distributed_run(emulator):
    result = headless(
        emulator,
        *distributed_args(1),
        "--check",
        "p50[ab/variant-a]<30ms",
        "--check",
        "p50[ab/variant-b] < 30ms",
        "--check",
        "p99.9 <= 10s",
        "--check",
        "rps>=5",
        "--check",
        "max[ab/typo]<1s",
        "--check",
        "error_rate<50%",
    )
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    rows = check_rows(result.stderr)
    assert rows["p50[ab/variant-a] < 30 ms"].endswith("PASS")  # 10 ms endpoint
    assert rows["p50[ab/variant-b] < 30 ms"].endswith("FAIL")  # 40 ms endpoint
    assert rows["p99.9 <= 10 s"].endswith("PASS") and rows["rps >= 5/s"].endswith("PASS")
    assert rows["max[ab/typo] < 1 s"] == "n/a  FAIL  (no request named 'ab/typo')"
    assert rows["error_rate < 50 %"].endswith("PASS")
    assert "4 of 6 checks passed, 2 failed" in result.stderr
    assert "exit code 3 (a check failed)" in result.stderr
    assert result.stderr.rindex("=== Checks ===") > result.stderr.rindex(
        "Response time percentiles"
    )  # the last word


def test_passing_checks_exit_0_although_requests_failed_where_locust_alone_exits_1(emulator):
    failing_requests = headless(emulator, seconds=3)
    assert failing_requests.returncode == 1  # Locust's own verdict: some requests failed (the faults)
    passing = headless(emulator, "--check", "error_rate<20%", "--check", "p95<2s", seconds=3)
    assert passing.returncode == 0, passing.stdout[-3000:] + passing.stderr[-3000:]
    assert "2 of 2 checks passed" in passing.stderr and "exit code 0" in passing.stderr


def test_checks_from_the_environment_and_a_config_file(emulator, tmp_path):
    env = aws_env(LOCUST_CHECK="p50 < 1ms; rps>=1")  # ';' separates several checks in one value
    from_env = headless(emulator, env=env, seconds=2)
    assert from_env.returncode == 3
    assert set(check_rows(from_env.stderr)) == {"p50 < 1 ms", "rps >= 1/s"}

    conf = tmp_path / "locust.conf"
    conf.write_text("check = [p50<1ms, error_rate<=100%]\n")  # Locust's list syntax
    from_file = headless(emulator, "--config", str(conf), seconds=2)
    assert from_file.returncode == 3
    assert {k: v.split()[-1] for k, v in check_rows(from_file.stderr).items()} == {
        "p50 < 1 ms": "FAIL",
        "error_rate <= 100 %": "PASS",
    }


@pytest.mark.parametrize(
    "how, expr, fragment",
    [
        ("cli", "p95<300", "p95 is a latency: give its unit, ms or s"),
        ("cli", "p95=300ms", "expected a comparison <, <=, > or >= after p95, found '='"),
        ("cli", "latency<1s", "unknown metric 'latency'"),
        ("env", "rps>=1; error_rate<1", "error_rate is a percentage"),
        ("cli", "p99[ab/variant-a<1s", "the request name has no closing ']'"),
    ],
)
def test_bad_expressions_exit_2_with_one_line_before_any_load(emulator, how, expr, fragment):
    args, env = (["--check", expr], None) if how == "cli" else ([], aws_env(LOCUST_CHECK=expr))
    result = headless(emulator, *args, env=env, seconds=2, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("locust: error: --check: "), result.stderr
    assert fragment in errors[0]
    assert "Traceback" not in result.stderr
    assert emulator.stats()["requests"] == 0


def test_run_report_counts_match_the_emulator_exactly(emulator, tmp_path):
    report_dir = tmp_path / "report"
    result = headless(
        emulator,
        *distributed_args(2),
        "--report",
        str(report_dir),
        "--check",
        "error_rate<50%",
        "--check",
        "p50[ab/variant-b]<5ms",
        users=8,
        seconds=5,
    )
    assert result.returncode == 3, result.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    server = emulator.stats()["endpoints"]["ab"]["variants"]
    names = {n["name"]: n for n in report["names"]}
    assert {name: n["requests"] for name, n in names.items()} == {
        f"ab/{v}": s["requests"] for v, s in server.items()
    }
    assert report["totals"]["requests"] == emulator.stats()["requests"]
    for variant, s in server.items():
        ours = {e["error"]: e["count"] for e in report["errors"] if e["name"] == f"ab/{variant}"}
        assert ours == {("ModelError(500)" if k == "ModelError" else k): v for k, v in s["errors"].items()}
        assert names[f"ab/{variant}"]["failures"] == sum(s["errors"].values())
        # the emulator's server-side p50 and ours (client side, same machine) within a few ms
        assert names[f"ab/{variant}"]["p50_ms"] == pytest.approx(s["latency_ms"]["p50"], abs=8)
    assert report["error_types"]["ModelError"] == server["variant-b"]["errors"]["ModelError"]
    assert [c["passed"] for c in report["checks"]] == [True, False] and report["checks_passed"] is False
    assert sum(report["timeline"]["requests"]) == report["totals"]["requests"]
    assert report["workers"] == 2 and report["users"] == 8

    page = render_in_chromium(report_dir / "report.html", ARTIFACTS / "run-report-emulator.png")
    assert page["pageErrors"] == [] and [m for m in page["console"] if m["type"] == "error"] == []
    charts = {c["id"]: c for c in page["charts"]}
    assert [d["label"] for d in charts["latency-percentiles"]["datasets"]] == ["ab/variant-a", "ab/variant-b"]
    assert sum(charts["errors-by-type"]["datasets"][0]["data"]) == sum(e["count"] for e in report["errors"])


def test_checks_set_in_the_web_ui_decide_the_exit_code(procs, emulator):
    """A test started from the web UI's form with a check in its custom parameters; Locust quits on
    SIGTERM (as a container is stopped) and exits with the checks' verdict."""
    web = free_port()
    master = procs.start(
        "locust",
        locust_cmd(
            "--web-host", "127.0.0.1", "--web-port", str(web), *endpoint_args(emulator), *distributed_args(1)
        ),
    )
    base = f"http://127.0.0.1:{web}"
    wait_until(lambda: master.alive() and answers(f"{base}/"), 30, "the web UI")
    wait_until(
        lambda: json.loads(http_get(f"{base}/stats/requests")[1])["worker_count"] == 1, 30, "the worker"
    )

    def swarm(check: str) -> dict:
        form = urlencode({"user_count": 2, "spawn_rate": 2, "check": check}).encode()
        return json.loads(
            http_post(f"{base}/swarm", form, {"Content-Type": "application/x-www-form-urlencoded"})[1]
        )

    refused = swarm("p50<1")  # checked before anything starts (the core's web UI validation)
    assert refused["success"] is False and refused["message"].startswith("--check: 'p50<1'")
    assert swarm("p50<1ms; rps>=1")["success"] is True
    wait_until(lambda: emulator.stats()["requests"] >= 50, 30, "requests to reach the emulator")
    master.signal(signal.SIGTERM)
    assert master.wait(60) == 3, master.log()[-3000:]
    assert "p50 < 1 ms" in master.log() and "1 of 2 checks passed" in master.log()
