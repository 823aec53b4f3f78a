#!/usr/bin/env python3
"""Emulator throughput: requests/s that ``smload emulator`` serves pinned to one core, with zero
latency and 64 keep-alive connections from ``wrk`` pinned to the other core (unsigned requests with
a well-formed SigV4 header: the default mode), next to a bare uvloop server that parses nothing and
answers every read with a fixed response, measured in the same run so the ratio means something
on a shared, noisy machine.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_emulator.py [--duration 10] [--rounds 2]

Prints a Markdown table for bench/RESULTS.md, with the server's CPU time per request next to its
rate: on a machine others share, the rate moves with their load, the CPU per request much less.
Traffic stays on 127.0.0.1; every run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET = 20_000

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Amz-Date"] = "20250101T000000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
"""


def bare_server(port: int) -> None:
    """The floor: a uvloop Protocol that answers each read with a fixed 200 (no parsing at all)."""
    import uvloop

    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n"
        b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}\n'
    )

    class Bare(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(response)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Bare, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, path: str, duration: int, script: Path) -> tuple[float, str, int]:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        "-c64",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(
            f"{errors.group(1)} non-2xx answers: the benchmark is not measuring successes\n{out}"
        )
    p99 = re.search(
        r"^\s*99%\s+(\S+)", out, re.M
    )  # the latency distribution, not a stdev column ending in 99%
    total = re.search(r"(\d+) requests in", out)
    return float(match.group(1)), p99.group(1) if p99 else "?", int(total.group(1)) if total else 0


def measure(
    name: str, server_cmd: list[str], path: str, duration: int, script: Path
) -> tuple[float, str, float]:
    """req/s, wrk's p99, and the server's CPU microseconds per request."""
    port = free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *server_cmd, str(port)]
        if name == "bare"
        else ["taskset", "-c", "0", *server_cmd, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_listening(port)
        cpu_before = cpu_seconds(proc.pid)  # taskset execs: the pid is the server's
        rate, p99, requests = run_wrk(port, path, duration, script)
        return rate, p99, (cpu_seconds(proc.pid) - cpu_before) * 1e6 / max(requests, 1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds of both servers (default 2)"
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench_emulator: {tool} is missing (make tools)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench_emulator: needs 2 cores (server on core 0, wrk on core 1)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        emulator = [
            str(BIN / "smload"),
            "emulator",
            "--host",
            "127.0.0.1",
            "--endpoint",
            "bench",
            "--variant",
            "name=AllTraffic,instances=1,concurrency=64,latency_ms=0,body=echo",
        ]
        bare = [sys.executable, __file__, "--bare-server"]
        rows: dict[str, list[tuple[float, str, float]]] = {"emulator": [], "bare": []}
        for _ in range(args.rounds):
            rows["bare"].append(measure("bare", bare, "/", args.duration, script))
            rows["emulator"].append(
                measure("emulator", emulator, "/endpoints/bench/invocations", args.duration, script)
            )
    best = {name: max(r[0] for r in runs) for name, runs in rows.items()}
    print(
        f"Emulator benchmark, {dt.date.today().isoformat()}, {args.rounds} rounds x {args.duration} s, "
        f"server on core 0, wrk -t1 -c64 on core 1\n"
    )
    print(
        "| server | req/s (each round) | best | wrk p99 (each round) | vs bare | server CPU us/request (each round) |"
    )
    print("|---|---|---|---|---|---|")
    for name in ("bare", "emulator"):
        rates = ", ".join(f"{r:,.0f}" for r, _, _ in rows[name])
        p99s = ", ".join(p for _, p, _ in rows[name])
        cpus = ", ".join(f"{c:.2f}" for _, _, c in rows[name])
        print(f"| {name} | {rates} | {best[name]:,.0f} | {p99s} | {best[name] / best['bare']:.2f} | {cpus} |")
    verdict = "meets" if best["emulator"] >= TARGET else "MISSES"
    print(f"\nemulator {best['emulator']:,.0f} req/s {verdict} the target of {TARGET:,} req/s")
    return 0 if best["emulator"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
