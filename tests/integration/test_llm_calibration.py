"""LLM calibration against the emulator's closed form (docs/emulator-llm.md "Capacity"): an inference
component with continuous batching, a TPOT objective, concurrency swept to the highest load that
meets it. The analytic knee: C callers without think time keep ``b = C * N / (N + 1)`` sequences in
the batch, whose step takes ``base + per_seq * b``; the largest C whose step (= TPOT) stays under the
objective. Found within 10%, in at most 3 minutes; the recommendation targets the per-copy
concurrency metric of inference components, with its policy file."""

from __future__ import annotations

import json
import math
import subprocess
import time

from testkit.support import BIN, aws_env, distributed_args, start_emulator

BASE_MS, PER_SEQ_MS, OUTPUT, TPOT_SLO_MS = 2.0, 0.5, 64, 12.0
CONFIG = f"""
endpoints:
  - name: chat
    inference_components:
      - name: gen
        copies: 1
        llm: {{max_batch: 64, kv_cache_tokens: 1000000, decode: {{base_ms: {BASE_MS}, per_seq_ms: {PER_SEQ_MS}}}}}
"""


def analytic_knee() -> int:
    batch = (TPOT_SLO_MS - BASE_MS) / PER_SEQ_MS  # the largest batch whose step meets the objective
    return math.floor(batch * (OUTPUT + 1) / OUTPUT)


def test_llm_calibration_finds_the_analytic_knee(procs, tmp_path):
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    out = tmp_path / "out"
    started = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "smload"),
            "calibrate",
            "--endpoint-name",
            "chat",
            "--inference-component",
            "gen",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--api",
            "openai",
            "--prompt-tokens",
            "4",
            "--output-tokens",
            str(OUTPUT),
            "--slo",
            f"tpot_p99<{TPOT_SLO_MS:g}ms",
            "--instances",
            "1",
            "--start-users",
            "4",
            "--step-warmup",
            "2",
            "--step-time",
            "4",
            "--output",
            str(out),
            "--stop-timeout",
            "10",
            *distributed_args(2),
        ],
        env=aws_env(),
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
        start_new_session=True,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "calibration.json").read_text())
    knee = summary["knee"]["users"]
    expected = analytic_knee()
    assert expected == 20
    assert abs(knee - expected) <= 0.1 * expected, (knee, expected, [s["users"] for s in summary["steps"]])
    assert elapsed <= 180, elapsed

    llm = summary["llm"]
    assert llm["metric"] == "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    assert llm["knee_concurrency_per_copy"] == knee
    assert len(llm["curve"]) == len(summary["steps"]) and all(
        p["output_tokens_per_s"] > 0 for p in llm["curve"]
    )
    component = summary["recommendation"]["variants"]["gen"]["concurrency_high_resolution"]
    assert component["metric"] == llm["metric"]
    policy = json.loads((out / component["policy_file"]).read_text())
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == llm["metric"]
    assert 0 < policy["TargetValue"] <= knee
    assert "inference-component/gen" in component["commands"][0]
    assert "sagemaker:inference-component:DesiredCopyCount" in component["commands"][0]
    assert 'id="tokens-tradeoff"' in (out / "calibration.html").read_text()
