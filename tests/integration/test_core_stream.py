"""``--stream``: InvokeEndpointWithResponseStream with both clients against the emulator's event
streams. Exact counts; a stream that breaks halfway is a failure of the stream's error type; the
time to the first part and the time between parts are measured per stream (report.json's
``ttfb_ms`` and ``per_part_ms``, kinds of their own in ``smload.measure``)."""

from __future__ import annotations

import json

import pytest
from testkit.support import distributed_args, locust_results, run_locust, start_emulator

STREAM_CONFIG = """
endpoints:
  - name: gen
    variants:
      - {name: ok, weight: 2, concurrency: 16, latency: 20, stream: {parts: 5, part_delay_ms: 10}}
      - {name: broken, concurrency: 16, latency: 20, stream: {parts: 6, part_delay_ms: 5, error_rate: 1.0}}
      - name: failing
        concurrency: 16
        latency: 20
        stream: {parts: 6, part_delay_ms: 5, error_rate: 1.0, error: InternalStreamFailure}
"""
OP = "InvokeEndpointWithResponseStream"


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_stream_counts_errors_and_part_timing(procs, tmp_path, client):
    config = tmp_path / "stream.yaml"
    config.write_text(STREAM_CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    (tmp_path / "prompt.json").write_text(
        '{"inputs": "Tell me a story about a load test.", "parameters": {}}'
    )
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "6",
        "-r",
        "6",
        "-t",
        "5s",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
        "--endpoint-name",
        "gen",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--stream",
        "--payload",
        str(tmp_path / "prompt.json"),
        "--client",
        client,
        "--json",
        "--report",
        str(tmp_path / "report"),
        *distributed_args(),
    )
    assert result.returncode == 0, result.stderr[-5000:]
    ours = locust_results(result)
    report = {n["name"]: n for n in json.loads((tmp_path / "report" / "report.json").read_text())["names"]}
    server = emulator.stats()["endpoints"]["gen"]["variants"]

    for variant, failure in (("ok", None), ("broken", "ModelError"), ("failing", "InternalFailure")):
        n = server[variant]["requests"]
        assert n > 10 and ours.requests[(OP, f"gen/{variant}")] == n, (variant, n, ours.requests)
        # every stream's first part arrived before it ended or broke
        assert report[f"gen/{variant}"]["ttfb_ms"]["count"] == n
        if failure:
            assert ours.failures[(OP, f"gen/{variant}")] == {failure: n}
            assert server[variant]["errors"] == {failure: n}
        else:
            assert (OP, f"gen/{variant}") not in ours.failures and server[variant]["errors"] == {}

    ok = report["gen/ok"]
    # 20 ms to the first of 5 parts, then one part every 10 ms: ~20 ms TTFB, ~60 ms in all. Lower
    # bounds are physics; the upper ones leave room for a busy machine, which only adds time.
    assert 18 <= ok["ttfb_ms"]["mean"] <= ok["avg_ms"] - 25
    assert 6 <= ok["per_part_ms"]["mean"] <= 100
    assert ok["per_part_ms"]["count"] == ours.requests[(OP, "gen/ok")] and ok["parts"] == 5 * ok["requests"]
    assert ours.entries[(OP, "gen/ok")]["total_content_length"] > 0
