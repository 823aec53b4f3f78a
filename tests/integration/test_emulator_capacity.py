"""The capacity model, measured from outside with a closed-loop driver independent of our load
generator (threads with ``http.client`` keep-alive connections), against a real emulator process."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter

from testkit.support import start_emulator

# Default mode accepts any well-formed SigV4 header: these drivers need no real signature.
HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0123",
    "Content-Type": "application/json",
}


def closed_loop(
    port: int,
    path: str,
    callers: int,
    duration_s: float,
    headers: dict | None = None,
    max_requests: int | None = None,
) -> tuple[list[tuple[float, int, str]], float]:
    """``callers`` threads, each sending one request after another on its own keep-alive connection
    for ``duration_s`` (or until ``max_requests`` in all). Returns (finish time, status, variant) per
    request and the start time."""
    results: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + duration_s
    sent = [0]

    def caller() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if max_requests is not None and sent[0] >= max_requests:
                        return
                    sent[0] += 1
                conn.request("POST", path, body=b'{"x":1}', headers={**HEADERS, **(headers or {})})
                response = conn.getresponse()
                response.read()
                with lock:
                    results.append(
                        (
                            time.monotonic(),
                            response.status,
                            response.getheader("x-Amzn-Invoked-Production-Variant", ""),
                        )
                    )
        finally:
            conn.close()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + 60)
    return results, start


def test_one_instance_four_slots_20ms_serves_200_per_second(procs):
    emulator = start_emulator(
        procs, "--endpoint", "cap", "--variant", "name=only,instances=1,concurrency=4,latency_ms=20"
    )
    results, start = closed_loop(emulator.port, "/endpoints/cap/invocations", callers=32, duration_s=8.0)
    assert all(status == 200 for _, status, _ in results)
    # The rate over the steady part (after the queue filled, before callers stop), measured over counts.
    window = [t for t, _, _ in results if start + 2.0 <= t < start + 7.0]
    rate = len(window) / 5.0
    assert 190 <= rate <= 210, f"{rate:.1f} req/s, expected 200 +- 5%"
    stats = emulator.stats()["endpoints"]["cap"]["variants"]["only"]
    assert stats["requests"] == len(results)
    assert stats["status"] == {"200": len(results)}
    # Server side: the model's 20 ms (time in a slot) and, with 32 callers on 4 slots, the queue wait.
    assert 19.0 <= stats["model_latency_ms"]["p50"] <= 21.0, stats["model_latency_ms"]
    assert 130 <= stats["latency_ms"]["p50"] <= 190, stats["latency_ms"]  # Little's law: 32 / 200 = 160 ms


def test_weighted_split_and_target_variant(procs):
    emulator = start_emulator(
        procs,
        "--endpoint",
        "ab",
        "--variant",
        "name=a,weight=0.7,latency_ms=0,concurrency=8",
        "--variant",
        "name=b,weight=0.3,latency_ms=0,concurrency=8",
    )
    results, _ = closed_loop(
        emulator.port, "/endpoints/ab/invocations", callers=8, duration_s=60, max_requests=5000
    )
    assert len(results) == 5000
    split = Counter(variant for _, _, variant in results)
    assert abs(split["a"] / 5000 - 0.7) <= 0.03, split
    assert split["a"] + split["b"] == 5000
    stats = emulator.stats()["endpoints"]["ab"]["variants"]
    assert (stats["a"]["requests"], stats["b"]["requests"]) == (split["a"], split["b"])

    targeted, _ = closed_loop(
        emulator.port,
        "/endpoints/ab/invocations",
        callers=2,
        duration_s=30,
        max_requests=200,
        headers={"X-Amzn-SageMaker-Target-Variant": "b"},
    )
    assert Counter(variant for _, _, variant in targeted) == {"b": 200}


def one_variant(procs, tmp_path, endpoint: str, variant_yaml: str):
    """An emulator with one endpoint and one variant ``v`` described by ``variant_yaml`` (flow style)."""
    config = tmp_path / f"{endpoint}.yaml"
    config.write_text(f"endpoints: [{{name: {endpoint}, variants: [{{name: v, {variant_yaml}}}]}}]\n")
    return start_emulator(procs, "--config", str(config))


def test_full_queue_fails_like_an_overloaded_model(procs, tmp_path):
    emulator = one_variant(procs, tmp_path, "small", "concurrency: 2, latency: 200, queue: {max_depth: 3}")
    results, _ = closed_loop(
        emulator.port, "/endpoints/small/invocations", callers=10, duration_s=30, max_requests=10
    )
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {200: 5, 424: 5}, statuses  # 2 in slots + 3 queued; the rest: ModelError(503)
    stats = emulator.stats()["endpoints"]["small"]["variants"]["v"]
    assert stats["status"] == {"200": 5, "424": 5} and stats["errors"] == {"ModelError": 5}


def test_queue_wait_limit(procs, tmp_path):
    emulator = one_variant(
        procs,
        tmp_path,
        "slow",
        "concurrency: 1, latency: 300, queue: {max_wait_ms: 100, on_timeout: ServiceUnavailable}",
    )
    results, _ = closed_loop(
        emulator.port, "/endpoints/slow/invocations", callers=3, duration_s=30, max_requests=3
    )
    assert Counter(status for _, status, _ in results) == {200: 1, 503: 2}
    metrics = emulator.metrics()
    assert 'sagemaker_emulator_requests_total{endpoint="slow",variant="v",status="503"} 2' in metrics
    assert 'sagemaker_emulator_queue_depth{endpoint="slow",variant="v"} 0' in metrics
