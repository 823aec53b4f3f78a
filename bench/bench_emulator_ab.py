#!/usr/bin/env python3
"""Classic emulator throughput, one tree against another: ``bench_emulator``'s measurement (zero
latency, 64 slots, ``wrk -t1 -c64`` on core 1, the emulator on core 0) for the ``smload`` of two
worktrees (each with its own .venv), alternating round by round so that the noise of a shared
machine falls on both alike; and, less noisy, the request path alone in one process (routing, the
capacity model, the answer and the ground truth of 100,000 requests handed to ``App.dispatch``
without sockets; best of 7, pinned to core 0). For a change that must not slow the classic path.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_emulator_ab.py --base ../main-copy [--rounds 8] [--duration 5]

Traffic stays on 127.0.0.1; every run stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_emulator  # noqa: E402

HERE = Path(__file__).resolve().parent.parent

# The request path without sockets: a loop stub that runs timers at once, a connection that drops answers.
IN_PROCESS = """
import time
from smload.emulator import config as cfg, server
config = cfg.from_flags([("endpoint", "bench"),
                         ("variant", "name=AllTraffic,instances=1,concurrency=64,latency_ms=0,body=echo")])
class Loop:
    def call_at(self, due, callback, arg): callback(arg)
    def call_soon(self, callback, arg): callback(arg)
class Transport:
    def write(self, data): pass
    def close(self): pass
class Conn:
    closed = False
    def __init__(self): self.pending = []; self.transport = Transport()
    def send(self, data, keep_alive): pass
app = server.App(config)
app.loop, app._uv = Loop(), False
conn = Conn()
headers = {b"content-type": b"application/json", b"x-amz-date": b"20250101T000000Z", b"host": b"127.0.0.1",
           b"authorization": b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
                             b"SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79"}
body = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
best = 1e9
for _ in range(7):
    start = time.perf_counter()
    for _ in range(100_000):
        app.dispatch(conn, server.Request(b"POST", b"/endpoints/bench/invocations", headers, body, len(body), True,
                                          time.monotonic()))
    best = min(best, time.perf_counter() - start)
print(best / 100_000 * 1e6)
"""


def in_process_us(tree: Path) -> float:
    out = subprocess.run(
        ["taskset", "-c", "0", str(tree / ".venv" / "bin" / "python"), "-c", IN_PROCESS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return float(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, type=Path, help="the other worktree (with its .venv)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "this": HERE}
    for tree in trees.values():
        if not (tree / ".venv" / "bin" / "smload").exists():
            sys.exit(f"bench_emulator_ab: {tree} has no .venv/bin/smload (make venv there)")
    rates: dict[str, list[float]] = {name: [] for name in trees}
    cpu_us: dict[str, list[float]] = {name: [] for name in trees}  # the server's CPU per request
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(bench_emulator.WRK_SCRIPT)
        for i in range(args.rounds):
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                cmd = [
                    str(tree / ".venv" / "bin" / "smload"),
                    "emulator",
                    "--host",
                    "127.0.0.1",
                    "--endpoint",
                    "bench",
                    "--variant",
                    "name=AllTraffic,instances=1,concurrency=64,latency_ms=0,body=echo",
                ]
                rate, _, cpu = bench_emulator.measure(  # (rate, p99, CPU microseconds per request)
                    name, cmd, "/endpoints/bench/invocations", args.duration, script
                )
                rates[name].append(rate)
                cpu_us[name].append(cpu)
    path_us = {name: [in_process_us(tree) for _ in range(2)] for name, tree in trees.items()}
    print(
        "| emulator | median req/s | best | each round | server CPU µs/request: median (each round) "
        "| request path alone (µs, two runs) |"
    )
    print("|---|---|---|---|---|---|")
    for name, tree in trees.items():
        values = rates[name]
        print(
            f"| {name} ({tree.name}) | {statistics.median(values):,.0f} | {max(values):,.0f} | "
            f"{', '.join(f'{v:,.0f}' for v in values)} | {statistics.median(cpu_us[name]):.2f} "
            f"({', '.join(f'{v:.2f}' for v in cpu_us[name])}) | {', '.join(f'{v:.2f}' for v in path_us[name])} |"
        )
    ratios = [t / b for t, b in zip(rates["this"], rates["base"], strict=True)]
    print(
        f"\nthis/base req/s pair by pair: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
