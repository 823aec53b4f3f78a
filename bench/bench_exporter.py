"""What the exporter costs the master (issue 4): with 50 request names and 4 workers at 2,000
requests/s in total, a scrape of /metrics must take under 50 ms and the master's CPU stay under
25% of a core.

Two live phases, back to back on the same machine: a master with 4 ``--processes`` workers that fire
Locust's request event at the target rate (``bench/exporter_load.py``: no client, so that the 2
cores go to what is measured), once with the exporter scraped every second (5x Prometheus's usual
5 s), once with it turned off (``--metrics-port 0``); the master's CPU over the same window in
both. Then, in this process, the two ways of rendering the same data: ours and prometheus_client's
(the reason ours is hand-written).

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_exporter.py [--duration 30]

Exits non-zero when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCRAPE_BAR_MS = 50.0
CPU_BAR = 25.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def total_requests(metrics: bytes) -> int:
    return sum(
        int(line.rsplit(b" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(b"locust_requests_total{")
    )


def live(args, exporter: bool) -> dict:
    """One phase: warm up, then measure the master's CPU (and scrapes) over ``args.duration``."""
    master_port, web_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "BENCH_NAMES": str(args.names),
        "BENCH_RATE": str(args.rate),
        "BENCH_USERS": str(args.users),
    }
    cmd = [
        BIN / "locust",
        "-f",
        REPO / "bench" / "exporter_load.py",
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "--run-time",
        f"{int(args.warmup + args.duration) + 30}s",
        "--processes",
        str(args.workers),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
        "--web-port",
        str(web_port),
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(metrics_port if exporter else 0),
        "--only-summary",
    ]
    log = open(REPO / f"bench/.exporter-{'on' if exporter else 'off'}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(c) for c in cmd], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    master = psutil.Process(proc.pid)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    log_path = Path(log.name)
    try:
        time.sleep(args.warmup)
        if proc.poll() is not None:
            raise SystemExit(f"locust exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if exporter:
            first = total_requests(get(url))
        cpu0, t0 = master.cpu_times(), time.monotonic()
        scrapes, size = [], 0
        while time.monotonic() - t0 < args.duration:
            tick = time.monotonic()
            if exporter:
                body = get(url)
                scrapes.append((time.monotonic() - tick) * 1000)
                size = len(body)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        cpu1, t1 = master.cpu_times(), time.monotonic()
        result = {"cpu": 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0)}
        if exporter:
            result.update(
                scrapes=scrapes,
                size=size,
                rate=(total_requests(get(url)) - first) / (t1 - t0),
                names=get(url).count(b"locust_requests_total{"),
            )
        return result
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def render_costs(names: int, rounds: int = 10) -> dict:
    """Ours vs prometheus_client on the same lifetime view: 50 names of 20,000 lognormal samples."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    from smload.exporter.buckets import BOUNDS_SECONDS, cumulative_counts
    from smload.exporter.exposition import RequestMetrics
    from smload.measure.series import Series
    from smload.record import Identity

    rng = random.Random(1)
    lifetime = {}
    for i in range(names):
        series = lifetime[Identity.of("InvokeEndpoint", "bench-endpoint", f"variant-{i:02d}")] = Series()
        for _ in range(20_000):
            series.requests += 1
            series.histogram.record(rng.lognormvariate(3.5, 0.5))
        series.failures["ModelError(500)"] = 200

    class Library:
        def collect(self):
            labels = ["request_type", "name"]
            req = CounterMetricFamily("locust_requests", "Requests", labels=labels)
            hist = HistogramMetricFamily("locust_request_duration_seconds", "Latency", labels=labels)
            for key, series in lifetime.items():
                req.add_metric([key.api, key.name], series.requests)
                counts = cumulative_counts(series.histogram)
                buckets = [(repr(le), n) for le, n in zip(BOUNDS_SECONDS, counts, strict=False)] + [
                    ("+Inf", counts[-1])
                ]
                hist.add_metric([key.api, key.name], buckets, series.histogram.sum / 1000)
            yield req
            yield hist

    registry = CollectorRegistry()
    registry.register(Library())
    ours = RequestMetrics(max_names=names)

    def timed(fn) -> float:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    return {"ours": timed(lambda: ours.render(lifetime)), "library": timed(lambda: generate_latest(registry))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds measured per phase (default 30)"
    )
    parser.add_argument("--warmup", type=float, default=12.0, help="seconds before measuring (default 12)")
    parser.add_argument("--rate", type=float, default=2000.0, help="requests/s in total (default 2000)")
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--users", type=int, default=80)
    args = parser.parse_args()

    on = live(args, exporter=True)
    off = live(args, exporter=False)
    costs = render_costs(args.names)
    scrapes = sorted(on["scrapes"])
    p50, p95, worst = statistics.median(scrapes), scrapes[int(0.95 * (len(scrapes) - 1))], scrapes[-1]
    print(
        f"\nload: {on['rate']:.0f} requests/s measured (target {args.rate:.0f}), {on['names']} names, "
        f"{args.workers} workers; /metrics {on['size'] / 1e6:.2f} MB, {len(scrapes)} scrapes\n"
    )
    print("| measure | exporter on | exporter off | bar |")
    print("|---|---|---|---|")
    print(f"| master CPU, % of a core | {on['cpu']:.1f} | {off['cpu']:.1f} | < {CPU_BAR:g} |")
    print(
        f"| scrape of /metrics, ms (p50 / p95 / max) | {p50:.1f} / {p95:.1f} / {worst:.1f} | - | < {SCRAPE_BAR_MS:g} |"
    )
    print(
        f"| render the request metrics, ms (median) | ours {costs['ours']:.1f} | prometheus_client {costs['library']:.1f} "
        f"| ratio {costs['library'] / costs['ours']:.0f}x |"
    )
    ok = on["cpu"] < CPU_BAR and p95 < SCRAPE_BAR_MS and on["rate"] > 0.9 * args.rate
    print("\nPASS" if ok else "\nFAIL: a bar is missed (or the load fell short of the target rate)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
