"""The batching model measured from outside: closed-loop callers on keep-alive connections (threads
with ``http.client``, independent of our load generator) stream chat completions from a real emulator
process and time every token they receive. The figures must match the closed form of
docs/emulator-llm.md ("Capacity") within 3%."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time

from testkit.support import start_emulator

CONFIG = """
endpoints:
  - name: batch
    variants: [{name: v, llm: {max_batch: 8, decode: {base_ms: 2, per_seq_ms: 0.5}}}]
  - name: kv
    variants: [{name: v, llm: {max_batch: 8, kv_cache_tokens: 420, decode: {base_ms: 2, per_seq_ms: 0.5}}}]
"""
PROMPT = "abcdefgh"  # 8 characters: 2 prompt tokens by the default rule (4 characters per token)
OUTPUT = 100


def closed_loop(port: int, endpoint: str, callers: int, duration_s: float) -> list[dict]:
    """``callers`` threads, each streaming one request after another for ``duration_s``. Per request:
    when it was sent and when each token arrived (monotonic)."""
    body = json.dumps(
        {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": OUTPUT, "stream": True}
    )
    headers = {"Authorization": "Bearer any-token", "Content-Type": "application/json"}
    results: list[dict] = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def caller() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                sent = time.monotonic()
                conn.request(
                    "POST", f"/endpoints/{endpoint}/openai/v1/chat/completions", body=body, headers=headers
                )
                response = conn.getresponse()
                assert response.status == 200, response.read()
                tokens = []
                while True:
                    line = response.readline()
                    if not line:
                        break
                    if line.startswith(b"data: {"):
                        tokens.append(time.monotonic())
                response.read()
                with lock:
                    results.append({"sent": sent, "tokens": tokens})
        finally:
            conn.close()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + 60)
    return results


def window_rate(results: list[dict], start: float, end: float) -> float:
    return sum(start <= t < end for r in results for t in r["tokens"]) / (end - start)


def tpots(results: list[dict], start: float, end: float) -> list[float]:
    return [
        (r["tokens"][-1] - r["tokens"][0]) / (len(r["tokens"]) - 1) * 1000.0
        for r in results
        if start <= r["sent"] and r["tokens"][-1] < end
    ]


def test_closed_loop_of_8_measures_the_closed_form(procs, tmp_path):
    """max_batch 8, decode 2 ms + 0.5 ms x batch, 8 callers asking 100 tokens each. Each request
    decodes for 100 steps and its caller's next one waits out the step under way: the mean batch is
    8 x 100/101, a step 2 + 0.5 x 7.92 = 5.96 ms, 1,329 tokens/s and a TPOT of 5.96 ms."""
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    began = time.monotonic()
    results = closed_loop(emulator.port, "batch", callers=8, duration_s=7.0)
    batch = 8 * OUTPUT / (OUTPUT + 1)
    step_ms = 2.0 + 0.5 * batch
    expected_rate = batch / step_ms * 1000.0
    rate = window_rate(results, began + 1.5, began + 6.5)
    assert abs(rate / expected_rate - 1) <= 0.03, f"{rate:.0f} tokens/s, expected {expected_rate:.0f}"
    tpot = statistics.mean(tpots(results, began + 1.5, began + 6.5))
    assert abs(tpot / step_ms - 1) <= 0.03, f"TPOT {tpot:.3f} ms, expected {step_ms:.3f}"
    assert all(len(r["tokens"]) == OUTPUT for r in results)
    truth = emulator.stats()["endpoints"]["batch"]["variants"]["v"]
    assert truth["llm"]["output_tokens"] == sum(len(r["tokens"]) for r in results)  # exact
    assert truth["llm"]["input_tokens"] == 2 * len(results)
    assert truth["status"] == {"200": len(results)}
    assert abs(truth["llm"]["tpot_ms"]["mean"] / step_ms - 1) <= 0.03, truth["llm"]["tpot_ms"]
    assert abs(truth["llm"]["batch"]["mean"] / batch - 1) <= 0.03, truth["llm"]["batch"]


def test_beyond_the_kv_budget_requests_queue_and_wait_in_ttft_not_tpot(procs, tmp_path):
    """A KV budget of 420 tokens holds 4 reservations of 2 + 100 tokens: 8 callers keep 4 decoding
    (a step of 2 + 0.5 x 4 = 4 ms, 1,000 tokens/s) and 4 waiting about one request's time (400 ms),
    which shows in their time to first token and not in their time per output token."""
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    began = time.monotonic()
    results = closed_loop(emulator.port, "kv", callers=8, duration_s=6.0)
    rate = window_rate(results, began + 1.5, began + 5.5)
    assert abs(rate / 1000.0 - 1) <= 0.03, f"{rate:.0f} tokens/s, expected 1000"
    tpot = statistics.mean(tpots(results, began + 1.5, began + 5.5))
    assert abs(tpot / 4.0 - 1) <= 0.03, f"TPOT {tpot:.3f} ms, expected 4"
    ttfts = [(r["tokens"][0] - r["sent"]) * 1000.0 for r in results if r["sent"] >= began + 1.5]
    assert statistics.median(ttfts) > 300, ttfts
    llm = emulator.stats()["endpoints"]["kv"]["variants"]["v"]["llm"]
    assert llm["batch"]["max"] == 4 and llm["batch"]["mean"] > 3.8, llm[
        "batch"
    ]  # below 4 only as the run starts and ends
    assert llm["kv_cache"]["utilisation_max"] == round(4 * 102 / 420, 4)
    assert llm["queue_wait_ms"]["p50"] > 300, llm["queue_wait_ms"]
    # the wait is all in the TTFT: what is left after it is one step (prefill + the first token)
    assert llm["ttft_ms"]["mean"] - llm["queue_wait_ms"]["mean"] < 10, (llm["ttft_ms"], llm["queue_wait_ms"])
    assert abs(llm["tpot_ms"]["mean"] / 4.0 - 1) <= 0.03, llm["tpot_ms"]
