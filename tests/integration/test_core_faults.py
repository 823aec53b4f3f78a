"""Every fault the emulator injects shows up in Locust's failures under its error type, with exactly
the emulator's count, for both clients; requests with no answer (dropped, timed out) are named by
the variant the client asked for (here none: ``unknown``). No client retries: one request, one count."""

from __future__ import annotations

import pytest
from testkit.support import distributed_args, locust_results, run_locust, start_emulator

from smload.errors import base_type

FAULTS_CONFIG = """
endpoints:
  - name: faults
    variants:
      - {name: ok, latency: 2}
      - {name: model, latency: 2, faults: {rates: {ModelError: 1.0}, model_error_status: 502}}
      - {name: throttled, latency: 2, faults: {rates: {ThrottlingException: 1.0}}}
      - {name: notready, latency: 2, faults: {rates: {ModelNotReadyException: 1.0}}}
      - {name: internal, latency: 2, faults: {rates: {InternalFailure: 1.0}}}
      - {name: unavailable, latency: 2, faults: {rates: {ServiceUnavailable: 1.0}}}
      - {name: dependency, latency: 2, faults: {rates: {InternalDependencyException: 1.0}}}
      - {name: invalid, latency: 2, faults: {rates: {ValidationError: 1.0}}}
      - {name: dropped, latency: 2, faults: {drop_rate: 1.0}}
      - {name: slow, latency: 10000, concurrency: 64}
"""

# --request-timeout 2 s against the slow variant's 10 s: generous both ways, so that a busy machine
# neither times out a fast answer nor lets a slow one through.
# variant -> the failure Locust must show for every one of its requests
EXPECTED = {
    "model": "ModelError(502)",
    "throttled": "ThrottlingException",
    "notready": "ModelNotReadyException",
    "internal": "InternalFailure",
    "unavailable": "ServiceUnavailable",
    "dependency": "InternalDependencyException",
    "invalid": "ValidationError",
}


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_each_fault_under_its_type_with_the_emulators_count(procs, tmp_path, client):
    config = tmp_path / "faults.yaml"
    config.write_text(FAULTS_CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    (tmp_path / "body.json").write_text('{"inputs": "x"}')
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "12",
        "-r",
        "12",
        "-t",
        "8s",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
        "--endpoint-name",
        "faults",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(tmp_path / "body.json"),
        "--request-timeout",
        "2",
        "--client",
        client,
        "--json",
        *distributed_args(),
    )
    assert result.returncode == 0, result.stderr[-5000:]
    ours = locust_results(result)
    server = emulator.stats()["endpoints"]["faults"]["variants"]

    for variant, failure in EXPECTED.items():
        key = ("InvokeEndpoint", f"faults/{variant}")
        count = server[variant]["requests"]
        assert count > 0, variant
        assert ours.requests[key] == count, (variant, ours.requests.get(key), count)
        assert ours.failures[key] == {failure: count}, (variant, ours.failures.get(key))
        assert server[variant]["errors"] == {base_type(failure): count}

    ok = ("InvokeEndpoint", "faults/ok")
    assert ours.requests[ok] == server["ok"]["requests"] > 0 and ok not in ours.failures

    # no answer, so no variant header: named 'unknown'; the emulator knows where it sent them
    unknown = ("InvokeEndpoint", "faults/unknown")
    dropped, slow = server["dropped"]["requests"], server["slow"]["requests"]
    assert server["dropped"]["errors"] == {"ConnectionError": dropped} and dropped > 0
    assert slow > 0
    assert ours.failures[unknown] == {"ConnectionError": dropped, "Timeout": slow}
    assert ours.requests[unknown] == dropped + slow

    assert sum(ours.requests_named("faults/").values()) == emulator.stats()["requests"]
