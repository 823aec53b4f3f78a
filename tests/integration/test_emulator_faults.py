"""Injected faults: what ``/_emulator/stats`` counts equals what the clients saw, exactly, for every
error type, scheduled windows and dropped connections (boto3 clients, no retries, several threads)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from botocore.exceptions import ClientError
from testkit.support import http_get, runtime_client, start_emulator, wait_until

FAULTS_CONFIG = """
endpoints:
  - name: flaky
    variants:
      - name: a
        weight: 1
        concurrency: 8
        latency: {median_ms: 2, p99_ms: 6}
        faults:
          rates: {ModelError: 0.05, "ModelError(503)": 0.03, ThrottlingException: 0.04, ModelNotReadyException: 0.02,
                  InternalFailure: 0.02, ServiceUnavailable: 0.02, InternalDependencyException: 0.02, ValidationError: 0.02}
          model_error_status: 500
          slow: {rate: 0.02, extra_ms: 30}
          drop_rate: 0.03
      - name: b
        weight: 1
        concurrency: 8
        latency: 2
        faults:
          windows: [{error: ServiceUnavailable, from_s: 0.6, to_s: 1.2}]
"""

# A boto3 error code -> the error type names the emulator counts under (DESIGN.md's closed set).
CLIENT_TYPES = {
    "ModelError",
    "ThrottlingException",
    "ModelNotReadyException",
    "InternalFailure",
    "ServiceUnavailable",
    "InternalDependencyException",
    "ValidationError",
}


def test_fault_counts_equal_the_errors_clients_saw(procs, tmp_path):
    config = tmp_path / "faults.yaml"
    config.write_text(FAULTS_CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    seen: Counter = Counter()  # (variant, error type or "ok")
    model_statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 2.5
    emulator.reset()  # the windows count from here

    def caller(index: int) -> None:
        client = runtime_client(emulator.url)
        n = 0
        while time.monotonic() < deadline:
            variant = "a" if n % 2 == 0 else "b"
            n += 1
            try:
                client.invoke_endpoint(EndpointName="flaky", Body=b'{"x": 1}', TargetVariant=variant)
                outcome = "ok"
            except ClientError as err:
                outcome = err.response["Error"]["Code"]
                assert outcome in CLIENT_TYPES, err.response
                if outcome == "ModelError":
                    with lock:
                        model_statuses[err.response["OriginalStatusCode"]] += 1
            except Exception as err:  # noqa: BLE001 - a dropped connection, whatever botocore calls it
                assert "Connection" in type(err).__name__ or "closed" in str(err).lower(), repr(err)
                outcome = "ConnectionError"
            with lock:
                seen[variant, outcome] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    stats = wait_until(lambda: _settled(emulator), 10, "the emulator to answer every request")
    variants = stats["endpoints"]["flaky"]["variants"]
    for variant in ("a", "b"):
        client_errors = {error: n for (v, error), n in seen.items() if v == variant and error != "ok"}
        assert variants[variant]["errors"] == client_errors, variant
        assert variants[variant]["requests"] == sum(n for (v, _), n in seen.items() if v == variant)
        assert variants[variant]["status"].get("200", 0) == seen[variant, "ok"]
        assert variants[variant]["latency_ms"]["count"] == seen[variant, "ok"]
    assert variants["a"]["status"].get("dropped", 0) == seen["a", "ConnectionError"] > 0
    assert set(model_statuses) == {500, 503}
    assert variants["a"]["status"]["424"] == sum(model_statuses.values())
    assert (
        seen["b", "ServiceUnavailable"] > 0 and len(variants["b"]["errors"]) == 1
    )  # the window, nothing else
    # Every error type injected on variant a was actually seen (the rates are high enough for ~1,000 requests).
    assert set(variants["a"]["errors"]) == CLIENT_TYPES | {"ConnectionError"}


def _settled(emulator):
    stats = emulator.stats()
    status, body = http_get(f"{emulator.url}/metrics")
    in_flight = [
        line for line in body.decode().splitlines() if line.startswith("sagemaker_emulator_in_flight{")
    ]
    return stats if all(line.endswith(" 0") for line in in_flight) else None
