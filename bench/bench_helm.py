#!/usr/bin/env python3
"""Scaling out during a test, the way `kubectl scale` does it to the chart's worker Deployment: how
long until the new workers carry their share of the users, with the chart's `--enable-rebalancing`
and with Locust's default (what other Locust charts run).

Real processes on 127.0.0.1: the emulator, a Locust master (bundled locustfile), 2 workers with
USERS users between them; then 2 more workers start at t0, and the master's /stats/requests is
polled every 50 ms for (a) all 4 workers connected and (b) every worker holding USERS/4 users.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_helm.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from testkit.support import (
    Procs,
    answers,
    aws_env,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    start_emulator,
    wait_until,
)

PAYLOAD = Path(__file__).resolve().parent.parent / "locust" / "payloads" / "small.json"


def stats(web: str) -> dict:
    return json.loads(http_get(f"{web}/stats/requests")[1])


def one_round(
    procs: Procs, emulator_url: str, rebalancing: bool, users: int, patience: float
) -> tuple[float, float | None]:
    web_port, master_port = free_port(), free_port()
    web = f"http://127.0.0.1:{web_port}"
    env = aws_env(
        LOCUST_ENDPOINT_NAME="ab-test",
        LOCUST_ENDPOINT_URL=emulator_url,
        LOCUST_PAYLOAD=str(PAYLOAD),
        LOCUST_STOP_TIMEOUT="10",
    )
    flags = ["--enable-rebalancing"] if rebalancing else []
    started = []
    try:
        started.append(
            procs.start(
                "master",
                locust_cmd(
                    "--master",
                    *flags,
                    "--web-host",
                    "127.0.0.1",
                    "--web-port",
                    str(web_port),
                    "--master-bind-host",
                    "127.0.0.1",
                    "--master-bind-port",
                    str(master_port),
                ),
                env=env,
            )
        )
        worker = locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port))
        started += [procs.start("worker", worker, env=env) for _ in range(2)]
        wait_until(
            lambda: answers(f"{web}/stats/requests") and stats(web)["worker_count"] == 2, 60, "2 workers"
        )
        http_post(
            f"{web}/swarm",
            f"user_count={users}&spawn_rate={users}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        wait_until(
            lambda: sorted(w["user_count"] for w in stats(web)["workers"]) == [users // 2] * 2,
            60,
            "users on 2 workers",
        )

        t0 = time.monotonic()
        started += [procs.start("worker", worker, env=env) for _ in range(2)]  # kubectl scale --replicas=4
        wait_until(lambda: stats(web)["worker_count"] == 4, 60, "4 workers", interval=0.05)
        connected = time.monotonic() - t0
        try:
            wait_until(
                lambda: sorted(w["user_count"] for w in stats(web)["workers"]) == [users // 4] * 4,
                patience,
                "users spread over 4 workers",
                interval=0.05,
            )
            spread = time.monotonic() - t0
        except TimeoutError:
            spread = None
        return connected, spread
    finally:
        for proc in reversed(started):
            proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument(
        "--patience", type=float, default=30.0, help="seconds to wait for the users to spread"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        procs = Procs(Path(tmp))
        try:
            emulator = start_emulator(
                procs,
                "--endpoint",
                "ab-test",
                "--variant",
                "name=variant-a,weight=1,instances=4,concurrency=64,latency_ms=20",
            )
            results = {}
            for rebalancing in (True, False):
                results[rebalancing] = [
                    one_round(procs, emulator.url, rebalancing, args.users, args.patience)
                    for _ in range(args.rounds)
                ]
        finally:
            procs.stop_all()

    print(
        "| master | new workers connected (s, each round) | users spread over all 4 (s, each round) | median |"
    )
    print("|---|---|---|---|")
    for rebalancing, rounds in results.items():
        connected = ", ".join(f"{c:.2f}" for c, _ in rounds)
        spreads = [s for _, s in rounds]
        spread = ", ".join(f"{s:.2f}" if s is not None else f"never (> {args.patience:g})" for s in spreads)
        median = f"{statistics.median(spreads):.2f}" if all(s is not None for s in spreads) else "never"
        print(
            f"| {'--enable-rebalancing' if rebalancing else 'default'} | {connected} | {spread} | {median} |"
        )
    return 0 if all(s is not None for _, s in results[True]) else 1


if __name__ == "__main__":
    sys.exit(main())
