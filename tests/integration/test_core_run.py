"""``make run`` (scripts/run.sh) as a user without any AWS setup runs it: the emulator, a master
and 2 workers, a summary per variant, an HTML report, the emulator stopped afterwards. And the
real-endpoint path (SAGEMAKER_ENDPOINT_NAME), aimed at a local emulator through botocore's own
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME so that no traffic leaves this machine."""

from __future__ import annotations

import os
import subprocess

from testkit.support import REPO, answers, aws_env, free_port, start_emulator


def clean_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        RUN_TIME="4s",
        USERS="6",
        REPORT_DIR=str(tmp_path / "reports"),
        METRICS_PORT=str(free_port()),
        **extra,
    )  # the exporter's 9646 may be another run's
    return env


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/run.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_make_run_with_no_aws_setup_at_all(tmp_path):
    port = free_port()
    result = run_script(clean_env(tmp_path, EMULATOR_PORT=str(port)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("=== SageMaker load test summary ===") :]
    rows = {line.split()[0]: line.split() for line in summary.splitlines() if line.startswith("ab-test/")}
    assert set(rows) == {"ab-test/variant-a", "ab-test/variant-b"}
    assert all(int(row[1]) > 0 for row in rows.values())
    reports = list((tmp_path / "reports").glob("run-*.html"))
    assert len(reports) == 1 and reports[0].stat().st_size > 10_000
    assert f"HTML report: {reports[0]}" in summary
    assert not answers(f"http://127.0.0.1:{port}/ping")  # the emulator was stopped


def test_make_run_against_a_named_endpoint_uses_your_credentials(procs, tmp_path):
    emulator = start_emulator(procs, "--endpoint", "my-endpoint", "--variant", "name=AllTraffic,latency_ms=2")
    test_keys = aws_env()
    env = clean_env(
        tmp_path,
        SAGEMAKER_ENDPOINT_NAME="my-endpoint",
        AWS_REGION="eu-central-1",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=emulator.url,
        AWS_ACCESS_KEY_ID=test_keys["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=test_keys["AWS_SECRET_ACCESS_KEY"],
        AWS_CONFIG_FILE=test_keys["AWS_CONFIG_FILE"],
        AWS_SHARED_CREDENTIALS_FILE=test_keys["AWS_SHARED_CREDENTIALS_FILE"],
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = run_script(env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "load-testing the real endpoint my-endpoint (region eu-central-1)" in result.stdout
    served = emulator.stats()["endpoints"]["my-endpoint"]["variants"]["AllTraffic"]["requests"]
    row = next(
        line.split() for line in result.stdout.splitlines() if line.startswith("my-endpoint/AllTraffic")
    )
    assert int(row[1]) == served > 0
