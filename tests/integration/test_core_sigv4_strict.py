"""Both clients against the emulator in strict SigV4 mode (it recomputes every signature with the
secret it was given): long-term keys, session tokens, temporary credentials from a
``credential_process`` that expire during the test, and a wrong secret reported as AccessDenied."""

from __future__ import annotations

import sys
import textwrap
import time
from collections import Counter

import pytest
from testkit.support import aws_env, distributed_args, locust_results, run_locust, start_emulator

KEY_ID, SECRET = "AKIDSTRICTLONGTERM01", "long/term/secret+key/0123456789abcdefghij"
TEMP_KEY_ID, TEMP_SECRET, TOKEN = (
    "ASIASTRICTSESSION001",
    "session/secret/key/abcdefghij0123456789",
    "FwoGZXIvYXdzEBYaD+session/token==",
)


def run(emulator, tmp_path, client: str, env: dict, *extra: str, seconds: int = 4):
    body = tmp_path / "body.json"
    body.write_text('{"inputs": [0.5, 1.5]}')
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
        "--endpoint-name",
        "strict",
        "--endpoint-url",
        emulator.url,
        "--region",
        "eu-west-1",
        "--payload",
        str(body),
        "--client",
        client,
        "--json",
        *extra,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return locust_results(result)


def strict_emulator(procs, *keys: str):
    args = [
        "--endpoint",
        "strict",
        "--variant",
        "name=v1,latency_ms=2",
        "--region",
        "eu-west-1",
        "--strict-sigv4",
    ]
    for key in keys:
        args += ["--access-key", key]
    return start_emulator(procs, *args)


def assert_all_signed_fine(emulator, ours):
    variant = emulator.stats()["endpoints"]["strict"]["variants"]["v1"]
    assert variant["requests"] > 20
    assert variant["status"] == {"200": variant["requests"]}, variant
    assert ours.requests == {("InvokeEndpoint", "strict/v1"): variant["requests"]}
    assert ours.failures == {}


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_long_term_keys(procs, tmp_path, client):
    emulator = strict_emulator(procs, f"{KEY_ID}:{SECRET}")
    env = aws_env(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    assert_all_signed_fine(emulator, run(emulator, tmp_path, client, env))


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_session_token(procs, tmp_path, client):
    emulator = strict_emulator(procs, f"{TEMP_KEY_ID}:{TEMP_SECRET}:{TOKEN}:{time.time() + 3600:.0f}")
    env = aws_env(AWS_ACCESS_KEY_ID=TEMP_KEY_ID, AWS_SECRET_ACCESS_KEY=TEMP_SECRET, AWS_SESSION_TOKEN=TOKEN)
    assert_all_signed_fine(emulator, run(emulator, tmp_path, client, env))


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_wrong_secret_is_access_denied(procs, tmp_path, client):
    emulator = strict_emulator(procs, f"{KEY_ID}:{SECRET}")
    env = aws_env(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY="not/the/right/secret")
    ours = run(emulator, tmp_path, client, env, seconds=2)
    variant = emulator.stats()["endpoints"]["strict"]["variants"]["unknown"]  # rejected before any variant
    n = variant["requests"]
    assert n > 0 and variant["errors"] == {"AccessDenied": n}
    assert ours.requests == {("InvokeEndpoint", "strict/unknown"): n}
    assert ours.failures == {("InvokeEndpoint", "strict/unknown"): {"AccessDenied": n}}


# A credential_process that hands out the key of the current time slot. It tells botocore the key
# expires 15 minutes after the slot ends, so botocore's advisory refresh (15 min before expiry)
# fetches the next key as the slot ends; the emulator really expires each key GRACE_S after its
# slot, so a client that did not refresh would get AccessDenied (ExpiredToken) from then on.
PERIOD_S, GRACE_S, SLOTS = 3, 4, 16  # a grace that a busy machine's slow refresh stays inside
CREDENTIAL_PROCESS = textwrap.dedent("""
    import datetime, json, os, sys, time
    t0, period = float(sys.argv[1]), float(sys.argv[2])
    slot = int((time.time() - t0) // period)
    with open(sys.argv[3], "a") as log:
        log.write(f"{os.getppid()} {slot}\\n")
    expires = datetime.datetime.fromtimestamp(t0 + (slot + 1) * period + 15 * 60, datetime.timezone.utc)
    print(json.dumps({"Version": 1, "AccessKeyId": f"ASIASLOT{slot:012d}", "SecretAccessKey": f"slot-secret-{slot}",
                      "SessionToken": f"slot-token-{slot}", "Expiration": expires.isoformat()}))
""")


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_credentials_refreshed_before_they_expire(procs, tmp_path, client):
    t0 = time.time()
    keys = [
        f"ASIASLOT{k:012d}:slot-secret-{k}:slot-token-{k}:{t0 + (k + 1) * PERIOD_S + GRACE_S:.3f}"
        for k in range(SLOTS)
    ]
    emulator = strict_emulator(procs, *keys)
    script, calls = tmp_path / "credential_process.py", tmp_path / "calls.log"
    script.write_text(CREDENTIAL_PROCESS)
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\ncredential_process = {sys.executable} {script} {t0} {PERIOD_S} {calls}\n")
    env = aws_env(AWS_CONFIG_FILE=str(config))
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]

    ours = run(emulator, tmp_path, client, env, *distributed_args(), seconds=5 * PERIOD_S)
    assert_all_signed_fine(emulator, ours)
    slots_per_process = Counter(line.split()[0] for line in calls.read_text().splitlines())
    workers = [pid for pid, n in slots_per_process.items() if n >= 3]
    assert len(workers) == 2, calls.read_text()  # each worker fetched a new key at least twice
    assert time.time() - t0 > 3 * PERIOD_S + GRACE_S  # the first keys really expired during the test
