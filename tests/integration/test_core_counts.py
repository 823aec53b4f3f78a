"""Nothing lost: a real master + 2 worker processes against a real emulator. Locust's count per
variant equals the emulator's exactly, failures land under the emulator's error type with exactly
its count, and the split follows the variant weights — with both clients."""

from __future__ import annotations

import math

import pytest
from testkit.support import distributed_args, locust_results, run_locust, start_emulator

from smload.errors import base_type

AB_CONFIG = """
endpoints:
  - name: ab
    variants:
      - {name: variant-a, weight: 0.7, instances: 2, concurrency: 8, latency: {median_ms: 5}}
      - name: variant-b
        weight: 0.3
        instances: 2
        concurrency: 8
        latency: {median_ms: 5}
        faults: {rates: {ModelError: 0.03}, model_error_status: 503}
"""


def run_against(emulator, tmp_path, *args: str, users: int = 8, seconds: int = 8):
    """Locust headless with the bundled locustfile; --stop-timeout lets in-flight requests finish
    (and be counted) when the run time is up, instead of being killed mid-request."""
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--endpoint-name",
        "ab",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(tmp_path / "payloads"),
        "--json",
        "--exit-code-on-error",
        "0",
        *distributed_args(),
        *args,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return locust_results(result), result


@pytest.fixture
def payloads(tmp_path):
    directory = tmp_path / "payloads"
    directory.mkdir()
    (directory / "one.json").write_text('{"inputs": [1, 2, 3]}')
    (directory / "two.csv").write_text("1,2,3\n4,5,6\n")
    return directory


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_counts_match_the_emulator_exactly_per_variant(procs, tmp_path, payloads, client):
    config = tmp_path / "ab.yaml"
    config.write_text(AB_CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    results, run = run_against(emulator, tmp_path, "--client", client)

    server = emulator.stats()["endpoints"]["ab"]["variants"]
    ours = results.requests_named("ab/")
    assert ours == {f"ab/{name}": v["requests"] for name, v in server.items()}, (ours, server)
    assert emulator.stats()["requests"] == sum(ours.values()) > 200

    # failures: the same types with exactly the same counts (ours keep ModelError's original status)
    for name, variant in server.items():
        failures = results.failures.get(("InvokeEndpoint", f"ab/{name}"), {})
        assert {base_type(k): n for k, n in failures.items()} == variant["errors"], (name, failures, variant)
        assert all(k == "ModelError(503)" for k in failures)
    assert server["variant-b"]["errors"].get("ModelError", 0) > 0

    # the split follows the weights: 0.7 within 5 standard deviations of a binomial
    total = sum(ours.values())
    share = ours["ab/variant-a"] / total
    assert abs(share - 0.7) < 5 * math.sqrt(0.7 * 0.3 / total), (share, total)

    # the summary table shows the same counts per variant
    summary = run.stderr[
        run.stderr.index("SageMaker load test summary") :
    ]  # --json: the summary goes to stderr
    for name, n in ours.items():
        line = next(line for line in summary.splitlines() if line.startswith(name))
        assert line.split()[1] == str(n)
    # generator health: the CPU each worker reported (Locust samples every 5 s; the run is longer)
    health = next(line for line in summary.splitlines() if line.startswith("generator health:"))
    assert "worker 0 " in health and "worker 1 " in health, health
    # a light load is no reason for a warning (readings over the ms between the last reports of a
    # stopping test once gave 105%)
    assert health.startswith("generator health: OK"), health


def test_requests_in_flight_at_the_end_are_recorded(procs, tmp_path, payloads):
    """Slow answers (1.5 s) still under way when the run time is up: with --stop-timeout the master
    has its workers drain before it quits (smload.drain), so each one is recorded, not just sent.
    (Locust alone would wait half a second for the workers' last reports.)"""
    emulator = start_emulator(
        procs, "--endpoint", "ab", "--variant", "name=slow,latency_ms=1500,concurrency=64"
    )
    results, _ = run_against(emulator, tmp_path, users=12, seconds=4)
    served = emulator.stats()["endpoints"]["ab"]["variants"]["slow"]
    assert results.requests == {("InvokeEndpoint", "ab/slow"): served["requests"]}
    assert served["requests"] >= 24 and served["status"] == {"200": served["requests"]}
    assert results.failures == {}


def test_a_saturated_generator_is_flagged_in_the_summary(procs, tmp_path, payloads):
    """One local process sending flat out against a zero-latency emulator is the bottleneck itself:
    the summary must say so (its CPU near 100%, or on a busy machine its event loop's lag)."""
    emulator = start_emulator(
        procs, "--endpoint", "ab", "--variant", "name=fast,latency_ms=0,concurrency=1000"
    )
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "32",
        "-r",
        "32",
        "-t",
        "6s",
        "--stop-timeout",
        "5",
        "--endpoint-name",
        "ab",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(tmp_path / "payloads"),
        "--only-summary",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    health = next(line for line in result.stdout.splitlines() if line.startswith("generator health:"))
    assert health.startswith("generator health: WARNING (local: "), health
    assert "add workers" in health
