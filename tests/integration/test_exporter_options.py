"""The exporter's options the Locust way (command line, LOCUST_* variables), and bad ones refused
before any load with one line and exit code 2."""

from __future__ import annotations

import socket

import pytest
from testkit.support import (
    answers,
    aws_env,
    free_port,
    http_get,
    locust_cmd,
    run_locust,
    start_emulator,
    wait_until,
)

VALID = ["--endpoint-name", "ep", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "body.json"
    path.write_text('{"inputs": [1]}')
    return path


def refused(payload, *args: str) -> str:
    result = run_locust(
        "--headless", "-u", "1", "-t", "5s", *VALID, "--payload", str(payload), *args, timeout=60
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_a_busy_port_is_refused_with_one_line(payload):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = refused(payload, "--metrics-host", "127.0.0.1", "--metrics-port", str(port))
    assert (
        line.startswith("locust: error: --metrics-port: cannot listen on 127.0.0.1:") and "free port" in line
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--metrics-max-names", "0"], "--metrics-max-names"),
        (["--cloudwatch", "--cloudwatch-interval", "5"], "--cloudwatch-interval"),
        (
            ["--metrics-host", "192.0.2.1", "--metrics-port", str(free_port())],
            "--metrics-host",
        ),  # TEST-NET-1: not ours
    ],
)
def test_bad_values_are_refused_before_any_load(payload, args, option):
    assert refused(payload, *args).startswith(f"locust: error: {option}: ")


def test_locust_environment_variables_configure_it(procs, payload):
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v1,latency_ms=5")
    port = free_port()
    env = aws_env(
        LOCUST_METRICS_HOST="127.0.0.1", LOCUST_METRICS_PORT=str(port), LOCUST_METRICS_MAX_NAMES="1"
    )
    procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "-u",
            "1",
            "-t",
            "20s",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload),
        ),
        env=env,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    wait_until(
        lambda: (
            answers(url)
            and b'locust_requests_total{request_type="InvokeEndpoint",name="ep/v1"}' in http_get(url)[1]
        ),
        30,
        "the exporter on LOCUST_METRICS_PORT",
    )
    assert http_get(f"http://127.0.0.1:{port}/")[0] == 200
    assert http_get(f"http://127.0.0.1:{port}/nothing")[0] == 404
