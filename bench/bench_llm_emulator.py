#!/usr/bin/env python3
"""LLM emulator throughput: output tokens per second that ``smload emulator`` streams pinned to one
core, for a variant whose decode step takes 1 ms whatever its batch (``decode_ms=1,
decode_per_seq_ms=0``, batch up to 512), against ``wrk`` pinned to the other core keeping N
streaming chat completions of 1,000 tokens in flight. The figure is the emulator's own ground truth
(``output_tokens`` in ``/_emulator/stats``, tokens written to sockets) over a measured window after
a warm-up (stats reset at its start); its ideal is N x 1,000 tokens/s (every sequence one token per
1-ms step). The emulator's inter-token latency over the window shows whether it kept the 1-ms steps
or fell behind (when behind, it writes the tokens of consecutive due steps together).

Two paths: the OpenAI-compatible route (server-sent events) and InvokeEndpointWithResponseStream
(one AWS event-stream PayloadPart per token, two CRC32s each).

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_emulator.py [--connections 256] [--duration 10]

Prints a Markdown table for bench/RESULTS.md. Traffic stays on 127.0.0.1; every run stops by itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET = 100_000
MAX_TOKENS = 1000

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"messages": [{"role": "user", "content": "Count to a thousand, please."}], "max_tokens": %d, "stream": true}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%s"
"""
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)
PATHS = {
    "OpenAI route (SSE)": ("/endpoints/bench/openai/v1/chat/completions", "Bearer sagemaker-api-key-bench"),
    "InvokeEndpointWithResponseStream": ("/endpoints/bench/invocations-response-stream", SIGV4),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def llm_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=10) as response:
        stats = json.load(response)
    return stats["endpoints"]["bench"]["variants"]["v"]["llm"]


def reset(port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_emulator/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def measure(
    path: str, auth: str, connections: int, warmup: float, duration: float, tmp: Path
) -> tuple[float, float, dict]:
    """(tokens/s over the window, emulator CPU seconds per second over the window, the emulator's
    inter-token latency over the window)."""
    port = free_port()
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT % (MAX_TOKENS, auth))
    emulator = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            str(BIN / "smload"),
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--endpoint",
            "bench",
            "--variant",
            "name=v,max_batch=512,kv_cache_tokens=10000000,decode_ms=1,decode_per_seq_ms=0,max_tokens=1000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wrk = None
    try:
        wait_listening(port)
        total = int(warmup + duration + 5)
        wrk = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{total}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}{path}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(warmup)
        reset(port)
        cpu0, t0 = _cpu(emulator.pid), time.monotonic()
        time.sleep(duration)
        stats = llm_stats(port)
        cpu1, t1 = _cpu(emulator.pid), time.monotonic()
        wrk.wait(total + 60)
        return stats["output_tokens"] / (t1 - t0), (cpu1 - cpu0) / (t1 - t0), stats["itl_ms"]
    finally:
        if wrk is not None and wrk.poll() is None:
            wrk.terminate()
            wrk.wait(10)
        emulator.terminate()
        try:
            emulator.wait(10)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=256, help="streams in flight (default 256)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window (default 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench_llm_emulator: {tool} is missing (make tools)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench_llm_emulator: needs 2 cores (emulator on core 0, wrk on core 1)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, auth) in PATHS.items():
            rate, cpu, itl = measure(path, auth, args.connections, args.warmup, args.duration, Path(tmp))
            rows.append((name, rate, cpu, itl))
    ideal = args.connections * 1000
    print(
        f"LLM emulator benchmark, {dt.date.today().isoformat()}: 1-ms decode steps, {args.connections} streams of "
        f"{MAX_TOKENS} tokens in flight (ideal {ideal:,} tokens/s), emulator on core 0, wrk on core 1, "
        f"{args.duration:g} s measured after {args.warmup:g} s\n"
    )
    print("| path | tokens/s | of ideal | emulator CPU | inter-token p50 / p99 / max (ms) |")
    print("|---|---|---|---|---|")
    for name, rate, cpu, itl in rows:
        print(
            f"| {name} | {rate:,.0f} | {rate / ideal:.0%} | {cpu:.0%} | {itl['p50']:g} / {itl['p99']:g} / {itl['max']:g} |"
        )
    best = min(rate for _, rate, _, _ in rows)
    verdict = "meets" if best >= TARGET else "MISSES"
    print(f"\nslowest path {best:,.0f} tokens/s {verdict} the target of {TARGET:,} tokens/s on one core")
    return 0 if best >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
