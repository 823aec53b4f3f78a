#!/usr/bin/env python3
"""Open loop against the emulator (issue 11's acceptance, full length): rate truth, overload
honesty, a stall, workers added and removed, and the schedule lag and rate error of one worker side
by side with locust-plugins' ``constant_total_ips`` (PyPI, in its own venv ``bench/.peers``).

    python3 -m venv bench/.peers && bench/.peers/bin/pip install locust-plugins==5.0.3
    flock /tmp/smload-bench.lock env PYTHONPATH=tests .venv/bin/python bench/bench_open_loop.py [--only NAME,...]

NAME: rate, overload, stall, scale, peers. Prints Markdown for bench/RESULTS.md. Traffic stays on
127.0.0.1; every run is bounded by --run-time (and a subprocess timeout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import heapq
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.support import (
    LOCUSTFILE,
    REPO,
    Procs,
    aws_env,
    distributed_args,
    free_port,
    locust_cmd,
    start_emulator,
    wait_until,
)

PEERS = REPO / "bench" / ".peers" / "bin"
RECORDER = REPO / "bench" / "locustfile_recorder.py"
PEER_LOCUSTFILE = REPO / "bench" / "locustfile_constant_total_ips.py"
CPUS = os.cpu_count()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")
    )


def emulator_config(tmp: Path, variant: str) -> Path:
    path = tmp / "emulator.yaml"
    path.write_text(f"endpoints:\n  - name: ep\n    variants:\n      - {variant}\n")
    return path


def truth(emulator) -> dict:
    return emulator.stats()["endpoints"]["ep"]["variants"]["v1"]


def full_seconds(per_second: list[int]) -> list[int]:
    busy = [i for i, n in enumerate(per_second) if n]
    return per_second[busy[0] + 1 : busy[-1]] if len(busy) > 2 else []


def ours(
    emulator,
    tmp: Path,
    *args: str,
    seconds: int,
    workers: int = 2,
    env: dict | None = None,
    locustfile: Path = LOCUSTFILE,
) -> dict:
    """A headless run of ours; report.json."""
    payload = tmp / "body.json"
    payload.write_text('{"inputs": [1, 2, 3]}')
    report = tmp / f"report-{time.monotonic_ns()}"
    dist = distributed_args(workers) if workers else []
    result = subprocess.run(
        locust_cmd(
            "--headless",
            "--metrics-port",
            "0",
            "-t",
            f"{seconds}s",
            "--stop-timeout",
            "30",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload),
            "--report",
            str(report),
            "--only-summary",
            *dist,
            *args,
            locustfile=locustfile,
        ),
        env=env or aws_env(),
        capture_output=True,
        text=True,
        timeout=seconds + 180,
    )
    if result.returncode not in (0, 1, 3):
        raise RuntimeError(result.stderr[-4000:])
    return json.loads((report / "report.json").read_text())


# --- rate truth ------------------------------------------------------------------------------------------
def cv(times: list[float]) -> float:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    mean = sum(gaps) / len(gaps)
    return math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1)) / mean


def records(directory: Path) -> list[tuple[float, float, float]]:
    """(intended start, response ms, schedule lag ms) of every request the recorder saw."""
    out = []
    for path in glob.glob(str(directory / "*.csv")):
        for line in Path(path).read_text().splitlines():
            start_s, response_ms, lag_ms = line.split(",")
            out.append((float(start_s), float(response_ms), float(lag_ms)))
    return out


def rate_truth(procs: Procs, tmp: Path, seconds: int) -> list[str]:
    rows = [
        "| process | target req/s | full seconds | emulator count | expected | within 3 sigma | worst second vs "
        "target | CV intended | CV sent | CV at the emulator | schedule lag p50 / p99 ms | dropped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    emulator = start_emulator(
        procs,
        "--config",
        str(emulator_config(tmp, "{name: v1, instances: 8, concurrency: 64, latency: {median_ms: 0}}")),
    )
    for process in ("poisson", "constant"):
        emulator.reset()
        record = tmp / f"rate-{process}"
        record.mkdir()
        report = ours(
            emulator,
            tmp,
            "--arrival-rate",
            "1000",
            "--arrival",
            process,
            "--max-in-flight",
            "400",
            seconds=seconds,
            env=aws_env(SMLOAD_BENCH_RECORD_DIR=str(record)),
            locustfile=RECORDER,
        )
        server = truth(emulator)
        full = full_seconds(server["arrivals"]["per_second"])
        count, expected = sum(full), 1000 * len(full)
        worst = max(full, key=lambda n: abs(n - 1000))
        lag = report["arrivals"]["schedule_lag_ms"]
        seen = records(record)
        intended = sorted(t for t, _ms, _lag in seen)
        sent = sorted(t + lag_ms / 1000 for t, _ms, lag_ms in seen)
        rows.append(
            f"| {process} | 1000 | {len(full)} | {count:,} | {expected:,} | "
            f"{'yes' if abs(count - expected) < 3 * math.sqrt(expected) else 'NO'} "
            f"({(count - expected) / math.sqrt(expected):+.2f} sigma) | {worst} ({worst / 1000 - 1:+.1%}) | "
            f"{cv(intended):.3f} | {cv(sent):.3f} | {server['arrivals']['interarrival_cv']:.3f} | "
            f"{lag['p50']} / {lag['p99']} | {report['arrivals']['dropped']} |"
        )
    return rows


# --- overload honesty ------------------------------------------------------------------------------------
def windows_run(
    procs: Procs,
    tmp: Path,
    variant: str,
    args: list[str],
    seconds: int,
    window: float = 5.0,
    workers: int = 2,
) -> tuple[list[dict], dict]:
    """Run ours with the per-request recorder while this process resets the emulator every ``window``
    seconds: per window (by completion time) the emulator's server-side p50/p99 and the client's."""
    emulator = start_emulator(procs, "--config", str(emulator_config(tmp, variant)))
    record = tmp / f"records-{time.monotonic_ns()}"
    record.mkdir()
    env = aws_env(SMLOAD_BENCH_RECORD_DIR=str(record))
    payload = tmp / "body.json"
    payload.write_text('{"inputs": [1, 2, 3]}')
    report = tmp / f"report-{time.monotonic_ns()}"
    proc = procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "--metrics-port",
            "0",
            "-t",
            f"{seconds}s",
            "--stop-timeout",
            "60",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload),
            "--report",
            str(report),
            "--only-summary",
            *distributed_args(workers),
            *args,
            locustfile=RECORDER,
        ),
        env=env,
    )
    wait_until(lambda: truth_or_none(emulator), 60, "the first request")
    start = math.floor(time.time()) + 1
    while time.time() < start:
        time.sleep(0.01)
    emulator.reset()
    server = []
    for k in range(1, 1000):
        boundary = start + k * window
        while time.time() < boundary:
            time.sleep(0.005)
        stats = truth(emulator)
        emulator.reset()
        server.append((boundary - window, boundary, stats))
        if not proc.alive() or stats["requests"] == 0 and k > 1:
            break
    proc.wait(timeout=300)
    client = []
    for path in glob.glob(str(record / "*.csv")):
        for line in Path(path).read_text().splitlines():
            start_s, response_ms, _lag = line.split(",")
            client.append((float(start_s) + float(response_ms) / 1000, float(response_ms), float(_lag)))
    out = []
    for a, b, stats in server:
        mine = [ms for done, ms, _kind in client if a <= done < b]
        if len(mine) < 50:
            continue
        out.append(
            {
                "window": (a - start, b - start),
                "n_client": len(mine),
                "n_server": stats["latency_ms"]["count"],
                "client_p50": quantile(mine, 0.5),
                "client_p99": quantile(mine, 0.99),
                "server_p50": stats["latency_ms"]["p50"],
                "server_p99": stats["latency_ms"]["p99"],
            }
        )
    return out, json.loads((report / "report.json").read_text())


def truth_or_none(emulator) -> bool:
    try:
        return truth(emulator)["requests"] > 0
    except (KeyError, AssertionError):
        return False


def within(client: float, server: float) -> bool:
    return abs(client - server) <= 0.02 * server + 2.0


def overload(procs: Procs, tmp: Path, seconds: int) -> list[str]:
    variant = "{name: v1, instances: 1, concurrency: 4, latency: {median_ms: 20}, queue: {max_depth: 100000, max_wait_ms: 600000}}"
    windows, report = windows_run(
        procs, tmp, variant, ["--arrival-rate", "240", "--max-in-flight", "20000"], seconds
    )
    rows = [
        "| window s | requests (client / emulator) | client p50 ms | emulator p50 ms | client p99 ms | emulator p99 ms | "
        "within 2% + 2 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in windows:
        ok = within(w["client_p50"], w["server_p50"]) and within(w["client_p99"], w["server_p99"])
        rows.append(
            f"| {w['window'][0]:.0f}-{w['window'][1]:.0f} | {w['n_client']} / {w['n_server']} | "
            f"{w['client_p50']:.1f} | {w['server_p50']:.1f} | {w['client_p99']:.1f} | {w['server_p99']:.1f} | "
            f"{'yes' if ok else 'NO'} |"
        )
    a = report["arrivals"]
    rows.append("")
    rows.append(
        f"Open loop 240 req/s: achieved {a['achieved_rate']:.1f} req/s, dropped {a['dropped']}, schedule lag p99 "
        f"{a['schedule_lag_ms']['p99']} ms; headline p50/p99 {report['totals']['p50_ms']:.0f} / "
        f"{report['totals']['p99_ms']:.0f} ms; service time p99 {a['service_ms']['p99']:.0f} ms."
    )
    emulator = start_emulator(procs, "--config", str(emulator_config(tmp, variant)))
    closed = ours(
        emulator, tmp, "-u", "5", "-r", "5", seconds=seconds
    )  # Little: 240 req/s x 20 ms = 4.8 users
    t = closed["totals"]
    rows.append(
        f"Closed loop sized for 240 req/s (5 users = 240 x 20 ms), same endpoint, {seconds} s: {t['rps']:.1f} req/s, "
        f"p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms, no failures ({t['failures']}): it looks healthy."
    )
    return rows


# --- stall ------------------------------------------------------------------------------------------------
def simulate_stall(
    rate: float, slots: int, service_s: float, stall: tuple[float, float], seconds: float, runs: int = 200
) -> tuple[float, float]:
    """p99 and max of the latency of an M/D/c queue whose servers all pause during ``stall`` (the
    emulator's model), over ``runs`` Poisson runs of ``seconds``: what queueing says to expect."""
    p99s, maxima = [], []
    for seed in range(runs):
        rng = random.Random(seed)
        free = [0.0] * slots
        latencies, t = [], 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= seconds:
                break
            begin = max(t, heapq.heappop(free))
            end = begin + service_s
            a, b = stall
            if begin < b and end > a:
                end = (b + service_s) if begin >= a else end + (b - a)
            heapq.heappush(free, end)
            latencies.append(end - t)
        p99s.append(quantile(latencies, 0.99) * 1000)
        maxima.append(max(latencies) * 1000)
    return quantile(p99s, 0.5), quantile(maxima, 0.5)


def stall(procs: Procs, tmp: Path, seconds: int) -> list[str]:
    variant = (
        "{name: v1, instances: 1, concurrency: 4, latency: {median_ms: 20}, queue: {max_depth: 100000, "
        "max_wait_ms: 600000}, faults: {stalls: [{from_s: 12, to_s: 14}]}}"
    )
    expected_p99, expected_max = simulate_stall(100, 4, 0.020, (12.0, 14.0), seconds)
    rows = [
        f"Expected (M/D/4 at 100 req/s, 20 ms, all slots paused 2 s, {seconds} s; median of 200 simulated runs): "
        f"p99 {expected_p99:.0f} ms, max {expected_max:.0f} ms. Fluid view: the stall queues 2 s x 100 = 200 "
        f"requests; the first waited 2 s; the backlog then drains at 200 - 100 = 100 req/s, so about 4 s "
        f"(400 requests, {400 / (100 * seconds):.0%} of the run) are late, by up to 2 s: p99 falls among them.",
        "",
        "| run | requests | p50 ms | p99 ms | max ms | emulator p99 ms | req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    emulator = start_emulator(procs, "--config", str(emulator_config(tmp, variant)))
    report = ours(
        emulator,
        tmp,
        "--arrival-rate",
        "100",
        "--arrival-seed",
        "1",
        "--max-in-flight",
        "2000",
        seconds=seconds,
    )
    server = truth(emulator)
    t = report["totals"]
    rows.append(
        f"| open loop 100 req/s | {t['requests']} | {t['p50_ms']:.1f} | {t['p99_ms']:.0f} | {t['max_ms']:.0f} | "
        f"{server['latency_ms']['p99']:.0f} | {t['rps']:.1f} |"
    )
    emulator = start_emulator(procs, "--config", str(emulator_config(tmp, variant)))
    report = ours(emulator, tmp, "-u", "2", "-r", "2", seconds=seconds)  # 2 users x 1/20 ms = 100 req/s
    server = truth(emulator)
    t = report["totals"]
    rows.append(
        f"| closed loop 2 users | {t['requests']} | {t['p50_ms']:.1f} | {t['p99_ms']:.0f} | {t['max_ms']:.0f} | "
        f"{server['latency_ms']['p99']:.0f} | {t['rps']:.1f} |"
    )
    return rows


# --- scale ------------------------------------------------------------------------------------------------
def scale(procs: Procs, tmp: Path, seconds: int) -> list[str]:
    """A master and separate worker processes: 2 workers, a third joins at 20 s, one leaves at 40 s."""
    emulator = start_emulator(
        procs,
        "--config",
        str(emulator_config(tmp, "{name: v1, instances: 8, concurrency: 64, latency: {median_ms: 2}}")),
    )
    payload = tmp / "body.json"
    payload.write_text('{"inputs": [1, 2, 3]}')
    port = free_port()
    env = aws_env()
    master = procs.start(
        "master",
        locust_cmd(
            "--master",
            "--headless",
            "--expect-workers",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--metrics-port",
            "0",
            "-t",
            f"{seconds}s",
            "--stop-timeout",
            "10",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload),
            "--arrival-rate",
            "600",
            "--arrival",
            "constant",
            "--max-in-flight",
            "120",
            "--only-summary",
        ),
        env=env,
    )

    def worker():
        return procs.start(
            "worker",
            locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
            env=env,
        )

    workers = [worker(), worker()]
    wait_until(lambda: truth_or_none(emulator), 60, "the first request")
    emulator.reset()
    began = time.time()
    events = []
    while time.time() - began < 20:
        time.sleep(0.05)
    workers.append(worker())
    events.append(("joined", time.time() - began))
    while time.time() - began < 40:
        time.sleep(0.05)
    workers[0].signal(signal.SIGTERM)
    events.append(("left", time.time() - began))
    master.wait(timeout=seconds + 120)
    per_second = truth(emulator)["arrivals"]["per_second"]
    rows = [
        "| 5-s window (s since reset) | arrivals at the emulator | vs 3,000 | event |",
        "|---|---|---|---|",
    ]
    for a in range(0, len(per_second) - 5, 5):
        n = sum(per_second[a : a + 5])
        event = ", ".join(f"worker {name} at {t:.1f} s" for name, t in events if a <= t < a + 5)
        rows.append(f"| {a}-{a + 5} | {n:,} | {n / 3000 - 1:+.2%} | {event} |")
    rows.append("")
    rows.append(
        "Per second around the changes: "
        + ", ".join(
            f"{t}: {per_second[t]}" for t in range(17, min(len(per_second), 47)) if t < len(per_second)
        )
    )
    return rows


# --- peers ------------------------------------------------------------------------------------------------
def peers(procs: Procs, tmp: Path, seconds: int) -> list[str]:
    if not (PEERS / "locust").exists():
        raise SystemExit(
            "bench/.peers is missing: python3 -m venv bench/.peers && bench/.peers/bin/pip install "
            "locust-plugins==5.0.3"
        )
    rows = [
        "| target req/s | tool | full seconds | achieved req/s (emulator) | rate error | schedule lag p50 ms | "
        "p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for rate in (1000, 2000, 5000):
        for tool in ("smload open loop (constant)", "locust-plugins constant_total_ips"):
            emulator = start_emulator(
                procs,
                "--config",
                str(
                    emulator_config(tmp, "{name: v1, instances: 8, concurrency: 64, latency: {median_ms: 0}}")
                ),
            )
            if tool.startswith("smload"):
                report = ours(
                    emulator,
                    tmp,
                    "--arrival-rate",
                    str(rate),
                    "--arrival",
                    "constant",
                    "--max-in-flight",
                    "200",
                    seconds=seconds,
                    workers=0,
                )
                lag = report["arrivals"]["schedule_lag_ms"]
                p50, p99 = lag["p50"], lag["p99"]
            else:
                lag_dir = tmp / f"peer-{rate}"
                lag_dir.mkdir(exist_ok=True)
                env = aws_env(PEER_IPS=str(rate), SMLOAD_BENCH_RECORD_DIR=str(lag_dir))
                result = subprocess.run(
                    [
                        str(PEERS / "locust"),
                        "-f",
                        str(PEER_LOCUSTFILE),
                        "--headless",
                        "-u",
                        "200",
                        "-r",
                        "200",
                        "-t",
                        f"{seconds}s",
                        "--host",
                        emulator.url,
                        "--only-summary",
                        "--stop-timeout",
                        "10",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=seconds + 120,
                )
                if result.returncode not in (0, 1):
                    raise RuntimeError(result.stderr[-3000:])
                lags = [
                    float(x)
                    for path in glob.glob(str(lag_dir / "*.lag"))
                    for x in Path(path).read_text().split()
                ]
                p50, p99 = round(quantile(lags, 0.5), 3), round(quantile(lags, 0.99), 3)
            full = full_seconds(truth(emulator)["arrivals"]["per_second"])
            achieved = sum(full) / len(full)
            rows.append(
                f"| {rate} | {tool} | {len(full)} | {achieved:.1f} | {achieved / rate - 1:+.2%} | {p50} | {p99} |"
            )
            procs.stop_all()
            procs.started.clear()
    return rows


SECTIONS = {"rate": rate_truth, "overload": overload, "stall": stall, "scale": scale, "peers": peers}
SECONDS = {"rate": 60, "overload": 30, "stall": 30, "scale": 60, "peers": 20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    args = parser.parse_args()
    print(
        f"bench_open_loop, {dt.datetime.now(dt.UTC).isoformat(timespec='minutes')}, {CPUS} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            procs = Procs(Path(tmp))
            try:
                started = time.monotonic()
                rows = SECTIONS[name](procs, Path(tmp), SECONDS[name])
                print(f"### {name} ({time.monotonic() - started:.0f} s)\n")
                print("\n".join(rows) + "\n", flush=True)
            finally:
                procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
