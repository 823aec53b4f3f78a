#!/usr/bin/env python3
"""Calibration accuracy and duration: ``smload calibrate`` against emulator endpoints of known
capacity (instances x slots / mean latency), with the default step settings and the short ones the
tests use, side by side in one run. One endpoint is faster than one worker process can drive, to
show the generator-saturation warning at work.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_calibration.py [--quick]

Prints a Markdown table for bench/RESULTS.md. Traffic stays on 127.0.0.1; every run stops by itself
(calibration is bounded by --max-steps and each step by its time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
PAYLOAD = REPO / "locust" / "payloads" / "small.json"
Z99 = 2.3263478740408408

# name, instances, slots per instance, median ms, p99 ms (None: constant), worker processes
ENDPOINTS = [
    ("2x4 slots, 25 ms", 2, 4, 25, None, 1),
    ("1x8 slots, 40 ms", 1, 8, 40, None, 2),
    ("3x2 slots, lognormal 20/60 ms", 3, 2, 20, 60, 1),
    ("4x16 slots, 5 ms (fast)", 4, 16, 5, None, 1),
]
STEPS = {
    "default (5 s + 10 s)": [],
    "tests (2 s + 4 s)": ["--step-warmup", "2", "--step-time", "4"],
    # by rate (open loop, constant arrivals): a ceiling of a few times the slots keeps an overloaded
    # step's backlog short
    "by rate, tests (2 s + 4 s)": [
        "--mode",
        "rate",
        "--step-warmup",
        "2",
        "--step-time",
        "4",
        "--max-in-flight",
        "64",
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def capacity(instances: int, slots: int, median: float, p99: float | None) -> float:
    sigma = math.log(p99 / median) / Z99 if p99 else 0.0
    return instances * slots / (median * math.exp(sigma**2 / 2) / 1000)


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_"))}
    out.update(
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return out


def run(
    name: str, instances: int, slots: int, median: float, p99: float | None, workers: int, steps: list[str]
) -> dict:
    port = free_port()
    spec = f"name=AllTraffic,instances={instances},concurrency={slots},latency_ms={median}"
    spec += f",latency_p99_ms={p99}" if p99 else ""
    emulator = subprocess.Popen(
        [
            BIN / "smload",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--endpoint",
            "ep",
            "--variant",
            spec,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as out:
            master = str(free_port())
            started = time.monotonic()
            done = subprocess.run(
                [
                    BIN / "smload",
                    "calibrate",
                    "--endpoint-name",
                    "ep",
                    "--endpoint-url",
                    f"http://127.0.0.1:{port}",
                    "--payload",
                    str(PAYLOAD),
                    "--instances",
                    str(instances),
                    "--slo",
                    "p99<2s",
                    "--output",
                    out,
                    "--processes",
                    str(workers),
                    "--master-bind-port",
                    master,
                    "--master-port",
                    master,
                    "--metrics-port",
                    "0",
                    "--only-summary",
                    *steps,
                ],
                env=env(),
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            wall = time.monotonic() - started
            if not (Path(out) / "calibration.json").exists():
                raise SystemExit(
                    f"bench_calibration: smload calibrate wrote no calibration.json:\n{done.stderr[-3000:]}"
                )
            summary = json.loads((Path(out) / "calibration.json").read_text())
    finally:
        emulator.terminate()
        emulator.wait(10)
    expected = capacity(instances, slots, median, p99)
    measured = summary["max_sustainable_rps"] or 0.0
    return {
        "endpoint": name,
        "workers": workers,
        "capacity": expected,
        "measured": measured,
        "error": measured / expected - 1,
        "knee": (summary["knee"].get("rate", summary["knee"]["users"]) if summary["knee"] else None),
        "slots": instances * slots,
        "steps": len(summary["steps"]),
        "duration": summary["duration_s"],
        "wall": wall,
        "cpu": max((s["cpu_percent"] or 0) for s in summary["steps"]),
        "lag": max((s["loop_lag_ms"] or 0) for s in summary["steps"]),
        "stop": summary["stop_reason"],
        "saturated": any("load generator was saturated" in w for w in summary["warnings"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the test step settings only")
    parser.add_argument("--settings", help="comma-separated indexes into STEPS (default: all)")
    parser.add_argument("--endpoints", help="comma-separated indexes into ENDPOINTS (default: all)")
    args = parser.parse_args()
    rows = []
    chosen = [int(i) for i in args.settings.split(",")] if args.settings else range(len(STEPS))
    endpoints = [ENDPOINTS[int(i)] for i in args.endpoints.split(",")] if args.endpoints else ENDPOINTS
    for index, (setting, steps) in enumerate(STEPS.items()):
        if (args.quick and steps == []) or index not in chosen:
            continue
        for endpoint in endpoints:
            row = run(*endpoint, steps)
            row["setting"] = setting
            rows.append(row)
            print(
                f"{setting} / {row['endpoint']}: {row['measured']:.1f} of {row['capacity']:.1f} req/s "
                f"({row['error']:+.1%}), {row['duration']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    print(f"\nbench_calibration, {dt.date.today().isoformat()}, {os.cpu_count()} CPUs\n")
    print(
        "| steps | endpoint | workers | capacity req/s | measured req/s | error | knee users or req/s (slots) | steps | "
        "calibration s | max worker CPU | max loop lag | stop | generator warning |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['endpoint']} | {r['workers']} | {r['capacity']:.1f} | {r['measured']:.1f} | "
            f"{r['error']:+.1%} | {r['knee']} ({r['slots']}) | {r['steps']} | {r['duration']:.0f} | {r['cpu']:.0f}% | "
            f"{r['lag']:.1f} ms | {r['stop']} | {'yes' if r['saturated'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
