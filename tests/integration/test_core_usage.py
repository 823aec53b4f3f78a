"""Bad input gets one line naming the option, exit code 2, no traceback, and not one request: real
Locust processes (local, --processes, an explicit worker, the web UI) against a real emulator that
must have seen nothing at the end of every case."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse

import pytest
from testkit.support import (
    Procs,
    aws_env,
    distributed_args,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    run_locust,
    start_emulator,
    wait_until,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """One emulator for every case of this module: each case asserts it still saw zero requests."""
    procs = Procs(tmp_path_factory.mktemp("emulator"))
    try:
        yield start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=1")
    finally:
        procs.stop_all()


@pytest.fixture
def payloads(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"inputs": 1}')
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "ok.json").write_text("{}")
    os.symlink(tmp_path / "nowhere.json", tmp_path / "dangling" / "gone.json")
    (tmp_path / "bad.jsonl").write_text('{"ok": 1}\n{not json}\n')
    (tmp_path / "big.bin").write_bytes(b"x" * (6 * 1024 * 1024 + 1))
    return tmp_path


def common(emulator, payload: str | None) -> list[str]:
    args = [
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "1",
        "-r",
        "1",
        "-t",
        "5s",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
    ]
    return args + (["--payload", payload] if payload else [])


def assert_refused(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 2, a last stderr line ``locust: error: <option>: ...`` holding every expected fragment,
    exactly one error line, no traceback. Returns that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    error_lines = [line for line in lines if "error" in line.lower()]
    assert len(error_lines) == 1, result.stderr[-3000:]
    assert lines[-1] == error_lines[0] and lines[-1].startswith("locust: error: "), result.stderr[-3000:]
    for fragment in expected:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


CASES = {
    # id: (arguments after the common ones, payload name or None, expected fragments)
    "no endpoint name": ([], "good.json", ["--endpoint-name: is required"]),
    "no payload": (["--endpoint-name", "ep"], None, ["--payload: is required"]),
    "payload missing": (["--endpoint-name", "ep"], "missing.json", ["--payload:", "does not exist"]),
    "empty directory": (["--endpoint-name", "ep"], "empty", ["--payload:", "has no files"]),
    "unreadable file": (
        ["--endpoint-name", "ep"],
        "dangling",
        ["--payload:", "gone.json", "is a broken symbolic link"],
    ),
    "invalid json line": (
        ["--endpoint-name", "ep"],
        "bad.jsonl",
        ["--payload:", "bad.jsonl:2: invalid JSON"],
    ),
    "body over 6 MiB": (["--endpoint-name", "ep"], "big.bin", ["--payload:", "6,291,457 bytes", "6 MiB"]),
    "bad endpoint name": (
        ["--endpoint-name", "my_endpoint!"],
        "good.json",
        ["--endpoint-name:", "not a valid endpoint name"],
    ),
    "bad variant": (["--endpoint-name", "ep", "--target-variant", "a b"], "good.json", ["--target-variant:"]),
    "bad timeout": (
        ["--endpoint-name", "ep", "--request-timeout", "-1"],
        "good.json",
        ["--request-timeout: must be a positive number"],
    ),
    "zero connect timeout": (
        ["--endpoint-name", "ep", "--connect-timeout", "0"],
        "good.json",
        ["--connect-timeout:"],
    ),
    "bad client": (
        ["--endpoint-name", "ep", "--client", "curl"],
        "good.json",
        ["--client", "invalid choice: 'curl'"],
    ),
    "bad order": (
        ["--endpoint-name", "ep", "--payload-order", "sorted"],
        "good.json",
        ["--payload-order", "invalid choice"],
    ),
    "bad endpoint url": (
        ["--endpoint-name", "ep", "--endpoint-url", "ftp://example.com"],
        "good.json",
        ["--endpoint-url:", "not an http(s) URL"],
    ),
    "bad region": (
        ["--endpoint-name", "ep", "--region", "mars"],
        "good.json",
        ["--region:", "not a valid AWS region"],
    ),
    "bad role arn": (["--endpoint-name", "ep", "--role-arn", "my-role"], "good.json", ["--role-arn:"]),
    "stream with target model": (
        ["--endpoint-name", "ep", "--stream", "--target-model", "m.tar.gz"],
        "good.json",
        ["--target-model: cannot be combined with --stream"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_option_or_file(emulator, payloads, case):
    args, payload, expected = CASES[case]
    full = common(emulator, payload and str(payloads / payload)) + args
    result = run_locust(*full, timeout=60)
    assert_refused(result, *expected)
    assert emulator.stats()["requests"] == 0


def test_no_credentials_at_all(emulator, payloads):
    env = aws_env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    result = run_locust(
        *common(emulator, str(payloads / "good.json")), "--endpoint-name", "ep", env=env, timeout=60
    )
    assert_refused(result, "credentials: no AWS credentials found")
    assert emulator.stats()["requests"] == 0


def test_a_profile_that_does_not_exist(emulator, payloads, tmp_path):
    """AWS_PROFILE naming a profile the config file lacks: one line naming it, not botocore's traceback."""
    config = tmp_path / "config"
    config.write_text("[profile other]\nregion = us-east-1\n")
    env = aws_env(AWS_PROFILE="missing", AWS_CONFIG_FILE=str(config))
    result = run_locust(
        *common(emulator, str(payloads / "good.json")), "--endpoint-name", "ep", env=env, timeout=60
    )
    assert_refused(result, "AWS_PROFILE: The config profile (missing) could not be found")
    assert emulator.stats()["requests"] == 0


def test_no_region_at_all(emulator, payloads):
    env = aws_env()
    del env["AWS_DEFAULT_REGION"]
    args = [a for a in common(emulator, str(payloads / "good.json")) if a not in ("--region", "us-east-1")]
    result = run_locust(*args, "--endpoint-name", "ep", env=env, timeout=60)
    assert_refused(result, "--region: no AWS region configured")
    assert emulator.stats()["requests"] == 0


def test_environment_variable_and_config_file(emulator, payloads, tmp_path):
    env = aws_env(LOCUST_PAYLOAD=str(payloads / "missing-from-env.json"), LOCUST_ENDPOINT_NAME="ep")
    result = run_locust(*common(emulator, None), env=env, timeout=60)
    assert_refused(result, "--payload:", "missing-from-env.json", "does not exist")

    conf = tmp_path / "smload.conf"
    conf.write_text(
        f"endpoint-name = ep\npayload = {payloads / 'missing-from-conf.json'}\nrequest-timeout = 2.5\n"
    )
    result = run_locust("--config", str(conf), *common(emulator, None), timeout=60)
    assert_refused(result, "--payload:", "missing-from-conf.json")
    assert emulator.stats()["requests"] == 0


def test_processes_one_error_line_exit_2(emulator, payloads):
    result = run_locust(
        *common(emulator, str(payloads / "bad.jsonl")),
        "--endpoint-name",
        "ep",
        *distributed_args(),
        timeout=60,
    )
    assert_refused(result, "--payload:", "invalid JSON")
    assert emulator.stats()["requests"] == 0


def test_worker_refuses_options_it_cannot_use(procs, emulator, payloads, tmp_path):
    """The master checks its options, but a worker reads the payload path on its own disk (a pod
    without the volume): it refuses, sends nothing, and quits with exit code 2."""
    port = free_port()
    master = procs.start(
        "master",
        locust_cmd(
            *common(emulator, "payload.json"),
            "--endpoint-name",
            "ep",
            "--master",
            "--expect-workers",
            "1",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
        ),
        cwd=payloads,
    )
    (payloads / "payload.json").write_text("{}")  # relative: exists in the master's directory only
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker = procs.start(
        "worker",
        locust_cmd(
            "--worker", "--metrics-port", "0", "--master-host", "127.0.0.1", "--master-port", str(port)
        ),
        cwd=elsewhere,
    )
    assert worker.wait(timeout=60) == 2, worker.log()[-3000:]
    assert "locust: error: --payload: 'payload.json' does not exist" in worker.log()
    assert "Traceback" not in worker.log()
    master.wait(timeout=60)
    assert emulator.stats()["requests"] == 0


def test_web_ui_refuses_a_bad_form(procs, payloads):
    """Web UI mode: the missing endpoint name is left to the form; a bad form value is refused with
    the message the UI shows, and nothing is spawned; a good one starts the test."""
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=1")
    port = free_port()
    proc = procs.start(
        "webui",
        locust_cmd(
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--metrics-port",
            "0",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payloads / "good.json"),
        ),
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), 30, "the web UI")
    assert "--endpoint-name: is required" in proc.log()  # deferred to the form, not an exit
    page = http_get(base)[1].decode()
    for option in ("endpoint_name", "payload", "client", "target_variant", "request_timeout", "stream"):
        assert f'"{option}"' in page, option  # among the web UI's custom parameters

    def swarm(**form):
        body = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1, "host": "", **form}).encode()
        status, raw = http_post(f"{base}/swarm", body, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, raw
        return json.loads(raw)

    answer = swarm(endpoint_name="ep", payload=str(payloads / "nope.json"))
    assert answer["success"] is False and answer["message"].startswith("--payload: "), answer
    answer = swarm(endpoint_name="ep", request_timeout="abc")
    assert (answer["success"], answer["message"]) == (
        False,
        "--request-timeout: 'abc' is not a number of seconds",
    )
    answer = swarm(endpoint_name="")
    assert answer["success"] is False and "--endpoint-name: is required" in answer["message"]
    assert emulator.stats()["requests"] == 0
    assert proc.alive()

    answer = swarm(endpoint_name="ep")
    assert answer["success"] is True, answer
    wait_until(lambda: emulator.stats()["requests"] > 0, 30, "requests from the started test")
    http_post(f"{base}/stop")


def _answers(url: str) -> bool:
    try:
        return http_get(url, timeout=1.0)[0] == 200
    except OSError:
        return False
