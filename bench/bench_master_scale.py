#!/usr/bin/env python3
"""Scale of the master, by simulation: one real Locust master (the bundled locustfile, the exporter
on) and 100 simulated workers x 20 request names, each reporting every 3 s with realistic deltas.
Goal: the master at <= 50% of one core, a /metrics scrape under 100 ms.

The workers are sockets speaking Locust's worker protocol (ZeroMQ DEALER, msgpack ``Message``s, as
``locust.runners.WorkerRunner`` does): ``client_ready``, a heartbeat every second, ``spawning`` and
``spawning_complete`` when the master spawns users on them, ``client_stopped``, and our drain
messages (``smload.measure.drain``); every 3 s a ``stats`` report with Locust's own fields (built by
Locust's ``RequestStats`` from the same samples, as a worker's ``report_to_master`` does) and ours
(``smload.measure.wire``, built by ``smload.measure.store.Measurements.on_request`` from the
client's records). Per report and name a few hundred requests (``--rate`` per name and worker x
3 s), lognormal latencies (each name its own median, 20-200 ms), 1% failures; the reports' times
are spread over the interval as workers that connected at different moments. The simulator runs
in one process on core 1, the master alone on core 0.

Measured over the steady window: the master's CPU (psutil), what one round of reports costs it
(one report from every worker; ``bench/master_scale_probe.py``, loaded next to the bundled
locustfile, times the master's own functions in its own thread: decoding, Locust's handling, our
fold), and ``/metrics`` scrapes (client wall time, every ``--scrape-every`` s). Then nothing lost:
the simulator pauses its data, and the exporter's ``locust_requests_total`` must equal the requests
the simulated workers reported, exactly. ``--profile`` adds py-spy's view of the master over the
window (what dominates).

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_master_scale.py [--workers 100] [--names 20]

Exits 1 when a goal is missed or a count differs. Traffic stays on 127.0.0.1; every run stops by itself.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CPU_GOAL = 50.0  # % of one core
SCRAPE_GOAL_MS = 100.0


# --- the simulated workers (a process of their own: --simulate) --------------------------------------
def simulate(args: argparse.Namespace) -> int:
    import random

    import gevent
    import gevent.event
    import zmq.green as zmq
    from locust import __version__
    from locust.rpc.protocol import Message
    from locust.runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING
    from locust.stats import RequestStats

    from smload.errors import RequestFailure
    from smload.measure import drain, wire
    from smload.measure.store import Measurements
    from smload.record import INVOKE, RECORD, Identity, Record

    rng = random.Random(args.seed)
    names = [Identity.of(INVOKE, "bench-endpoint", f"variant-{i:02d}") for i in range(args.names)]
    shapes = [(rng.uniform(20, 200), rng.uniform(0.3, 0.8)) for _ in names]  # median ms, sigma
    per_report = args.rate * args.interval

    def one_report() -> tuple[list, list, dict, dict, int]:
        """Locust's stats, total and errors and our series of one worker's report interval."""
        stats, measurements = RequestStats(), Measurements(sends=False, aggregates=False)
        requests = 0
        for identity, (median, sigma) in zip(names, shapes, strict=True):
            context = {RECORD: Record(identity)}
            for _ in range(max(1, round(rng.gauss(per_report, per_report**0.5)))):
                ms = median * rng.lognormvariate(0.0, sigma)
                failure = RequestFailure("ModelError(500)", "boom") if rng.random() < 0.01 else None
                stats.log_request(identity.api, identity.name, ms, 312)  # as Locust's request listener does
                if failure is not None:
                    stats.log_error(identity.api, identity.name, failure)
                measurements.on_request(identity.api, identity.name, ms, 312, failure, context)
                requests += 1
        entries, total = stats.serialize_stats(), stats.total.get_stripped_report()
        return entries, dict(measurements.pending), total, stats.serialize_errors(), requests

    pool = [one_report() for _ in range(args.distinct)]

    def spread(n: int, now: float) -> dict[int, int]:
        t, third = int(now), n // 3
        return {k: v for k, v in ((t - 2, third), (t - 1, third), (t, n - 2 * third)) if v}

    def restamp(entry: dict, now: float) -> dict:
        return {
            **entry,
            "start_time": now - args.interval,
            "last_request_timestamp": now,
            "num_reqs_per_sec": spread(entry["num_requests"], now),
            "num_fail_per_sec": spread(entry["num_failures"], now),
        }

    reported = [0]  # requests in the reports sent with data
    paused = [False]
    quit_all = gevent.event.Event()
    context = zmq.Context()
    hostname = socket.gethostname()

    class Worker:
        def __init__(self, index: int):
            self.index = index
            self.client_id = f"{hostname}_sim{index:03d}"
            self.socket = context.socket(zmq.DEALER)
            self.socket.setsockopt(zmq.IDENTITY, self.client_id.encode())
            self.socket.connect(f"tcp://127.0.0.1:{args.master_port}")
            self.state = STATE_INIT
            self.user_classes_count: dict[str, int] = {}
            self.sent = 0
            self.born = time.time()

        def send(self, kind: str, data=None) -> None:
            self.socket.send(Message(kind, data, self.client_id).serialize(), zmq.NOBLOCK)

        def report(self) -> None:
            now = time.time()
            age = now - self.born  # a worker at 50% CPU, its event loop 1 ms late (smload.measure.health)
            probes = float(int(age / 0.05))
            health = [0.5 * age, 0.001 * probes, probes, 0.0]
            data = {
                "user_classes_count": self.user_classes_count,
                "user_count": sum(self.user_classes_count.values()),
            }
            if self.state == STATE_RUNNING and not paused[0]:
                entries, series, total, errors, requests = pool[(self.index + self.sent) % len(pool)]
                data.update(
                    stats=[restamp(e, now) for e in entries],
                    stats_total=restamp(total, now),
                    errors={k: {**e, "first_seen": now - 1, "last_seen": now} for k, e in errors.items()},
                )
                data[wire.FIELD] = wire.encode(series, health)  # the codec a worker uses
                reported[0] += requests
            else:
                data.update(stats=[], stats_total=RequestStats().total.get_stripped_report(), errors={})
                data[wire.FIELD] = wire.encode({}, health)
            self.sent += 1
            self.send("stats", data)

        def heartbeats(self) -> None:
            while True:
                self.send(
                    "heartbeat",
                    {"state": self.state, "current_cpu_usage": 50.0, "current_memory_usage": 90e6},
                )
                gevent.sleep(1.0)

        def reports(self) -> None:
            gevent.sleep(args.interval * self.index / args.workers)  # connected at different moments
            while True:
                self.report()
                gevent.sleep(args.interval)

        def listen(self) -> None:
            self.send("client_ready", __version__)
            while True:
                message = Message.unserialize(self.socket.recv())
                if message.type == "spawn":
                    self.send("spawning")
                    self.state = STATE_SPAWNING
                    self.user_classes_count = dict(message.data["user_classes_count"])
                    self.state = STATE_RUNNING
                    self.send(
                        "spawning_complete",
                        {
                            "user_classes_count": self.user_classes_count,
                            "user_count": sum(self.user_classes_count.values()),
                        },
                    )
                elif message.type == drain.DRAIN:
                    self.report()
                    self.send(drain.DRAINED)
                elif message.type == "stop":
                    self.state, self.user_classes_count = STATE_INIT, {}
                    self.send("client_stopped")
                    self.send("client_ready", __version__)
                elif message.type == "quit":
                    return

    workers = [Worker(i) for i in range(args.workers)]
    greenlets = [gevent.spawn(w.heartbeats) for w in workers] + [gevent.spawn(w.reports) for w in workers]
    listeners = [gevent.spawn(w.listen) for w in workers]

    def pause() -> None:
        paused[0] = True
        print(f"REPORTED {reported[0]}", flush=True)

    gevent.signal_handler(signal.SIGUSR1, pause)
    gevent.signal_handler(signal.SIGTERM, quit_all.set)
    print(
        f"READY {len(pool)} distinct reports of {sum(p[4] for p in pool) // len(pool)} requests", flush=True
    )
    gevent.spawn(lambda: (gevent.joinall(listeners), quit_all.set()))
    quit_all.wait(timeout=args.lifetime)
    gevent.killall(greenlets + listeners)
    for w in workers:
        w.socket.close(linger=0)
    context.term()
    return 0


# --- the benchmark ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(cpu: int) -> list[str]:
    """Run on core ``cpu`` only; as root also ahead of other work on this shared machine (nice -10)."""
    boost = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
    return [*boost, "taskset", "-c", str(cpu)]


def scrape(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return (time.perf_counter() - start) * 1000, body


def requests_total(metrics: bytes) -> int:
    return sum(
        int(float(line.rsplit(b" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith(b"locust_requests_total{")
    )


def probe_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(what: str, condition, timeout: float, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc, log in procs:
            if proc.poll() is not None:
                raise SystemExit(
                    f"bench_master_scale: {what}: a process exited with {proc.returncode}:\n"
                    f"{Path(log).read_text()[-3000:]}"
                )
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_master_scale: {what}: not within {timeout:g} s")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def profile_summary(raw: Path, top: int = 18) -> str:
    """py-spy's collapsed stacks -> the functions with the most samples, inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [
        f"py-spy, {total} samples of the master over the window",
        "",
        "| function | inclusive | self |",
        "|---|---|---|",
    ]
    for frame, n in inclusive.most_common(top):
        lines.append(f"| `{frame}` | {100 * n / total:.1f}% | {100 * own[frame] / total:.1f}% |")
    lines += ["", "| function (by self) | self |", "|---|---|"]
    for frame, n in own.most_common(top):
        lines.append(f"| `{frame}` | {100 * n / total:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=100, help="simulated workers (default 100)")
    parser.add_argument("--names", type=int, default=20, help="request names per worker (default 20)")
    parser.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="requests/s per name and worker (default 100: ~300 per name in each 3-s report)",
    )
    parser.add_argument(
        "--interval", type=float, default=3.0, help="seconds between a worker's reports (Locust: 3)"
    )
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds after all users run (default 15)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes (default 1)")
    parser.add_argument(
        "--distinct", type=int, default=12, help="distinct reports the workers take turns with"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="py-spy the master over the window")
    parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--master-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.simulate:
        return simulate(args)
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(BIN))
    if args.profile and not py_spy:
        sys.exit(
            "bench_master_scale: --profile needs py-spy on PATH (pip install py-spy, in a venv of its own)"
        )

    import psutil

    workdir = Path(tempfile.mkdtemp(prefix="bench-master-scale-"))
    payload = workdir / "payload.json"
    payload.write_text('{"inputs": [1]}')
    probe = workdir / "probe.jsonl"
    master_port, metrics_port = free_port(), free_port()
    users = args.workers * 20
    run_time = args.warmup + args.duration + 120
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_"))}
    env.update(
        AWS_ACCESS_KEY_ID="AKIDBENCHMARK0000000",
        AWS_SECRET_ACCESS_KEY="bench/secret/key/000000000000000000000000",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        SMLOAD_BENCH_PROBE=str(probe),
    )
    master_cmd = [
        *pinned(0),
        str(BIN / "locust"),
        "-f",
        f"{REPO / 'locust' / 'locustfile.py'},{REPO / 'bench' / 'master_scale_probe.py'}",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
        "--headless",
        "--expect-workers",
        str(args.workers),
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{run_time:.0f}s",
        "--only-summary",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(metrics_port),
        "--endpoint-name",
        "bench-endpoint",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--region",
        "us-east-1",
        "--payload",
        str(payload),
        "--drain-timeout",
        "2",
    ]
    sim_cmd = [
        *pinned(1),
        sys.executable,
        __file__,
        "--simulate",
        "--master-port",
        str(master_port),
        "--workers",
        str(args.workers),
        "--names",
        str(args.names),
        "--rate",
        str(args.rate),
        "--interval",
        str(args.interval),
        "--distinct",
        str(args.distinct),
        "--seed",
        str(args.seed),
        "--lifetime",
        str(run_time + 60),
    ]
    master_log, sim_log = workdir / "master.log", workdir / "simulator.log"
    master = subprocess.Popen(
        master_cmd,
        env=env,
        stdout=open(master_log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sim = subprocess.Popen(
        sim_cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(sim_log, "wb"),
        text=True,
        start_new_session=True,
    )
    procs = [(master, master_log), (sim, sim_log)]
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        ready = sim.stdout.readline().strip()
        if not ready.startswith("READY"):
            raise SystemExit(
                f"bench_master_scale: the simulator did not start:\n{sim_log.read_text()[-3000:]}"
            )
        print(f"simulator: {ready[6:]}; master on core 0, workers on core 1", flush=True)
        wait_for(
            "all workers connected and users running",
            lambda: any(
                line["state"] == "running" and line["workers"] == args.workers and line["users"] == users
                for line in probe_lines(probe)
            ),
            120,
            procs,
        )
        print(f"{args.workers} workers, {users} users running; warming up {args.warmup:g} s", flush=True)
        time.sleep(args.warmup)
        process = psutil.Process(master.pid)
        spy = None
        if args.profile:
            raw = workdir / "master.pyspy"
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(master.pid),
                    "--duration",
                    str(int(args.duration)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(workdir / "py-spy.log", "wb"),
            )
        first = probe_lines(probe)[-1]
        cpu0, t0 = process.cpu_times(), time.monotonic()
        scrapes, size = [], 0
        while time.monotonic() - t0 < args.duration:
            tick = time.monotonic()
            ms, body = scrape(url)
            scrapes.append(ms)
            size = len(body)
            time.sleep(max(0.0, args.scrape_every - (time.monotonic() - tick)))
        cpu1, t1 = process.cpu_times(), time.monotonic()
        window = [line for line in probe_lines(probe) if line["t"] > first["t"]]
        last = window[-1]
        rss = process.memory_info().rss
        # nothing lost: stop the data, then the exporter's total must be what the workers reported
        sim.send_signal(signal.SIGUSR1)
        reported = int(sim.stdout.readline().split()[1])
        counted = [0]

        def caught_up() -> bool:
            counted[0] = requests_total(scrape(url)[1])
            return counted[0] >= reported

        try:
            wait_for("the exporter's count to reach the reported requests", caught_up, 15, procs)
        except SystemExit:
            pass
        time.sleep(1.0)
        counted[0] = requests_total(scrape(url)[1])
        if spy is not None:
            spy.wait(timeout=60)
    finally:
        for proc in (master, sim):  # the master first: it drains and quits the workers, as at a test's end
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    locust_counted = next(
        (
            int(line.split()[1])
            for line in master_log.read_text().splitlines()
            if line.split()[:1] == ["Aggregated"]
        ),
        None,
    )  # Locust's own table, at its exit
    seconds = t1 - t0
    cpu = 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / seconds
    rounds = seconds / args.interval

    def per_round(kind: str) -> tuple[float, int, float]:
        """(ms of master CPU per round, calls in the window, the longest call in ms)"""
        before, after = first["totals"].get(kind, [0, 0.0, 0.0]), last["totals"].get(kind, [0, 0.0, 0.0])
        longest = max((line["totals"].get(kind, [0, 0.0, 0.0])[2] for line in window), default=0.0)
        return 1000 * (after[1] - before[1]) / rounds, after[0] - before[0], 1000 * longest

    reports_in_window = per_round("message:stats")[1]
    p50, p95, worst = statistics.median(scrapes), percentile(scrapes, 0.95), max(scrapes)
    print(
        f"\nbench_master_scale, {dt.date.today().isoformat()}: {args.workers} simulated workers x {args.names} names, "
        f"a report every {args.interval:g} s each (~{args.rate * args.interval:.0f} requests per name per report), "
        f"{args.duration:g} s window, {reports_in_window} reports in it ({reports_in_window / rounds:.0f} per round), "
        f"{len(scrapes)} scrapes of {size / 1e6:.2f} MB; master RSS {rss / 2**20:.0f} MiB\n"
    )
    print("| measure | value | goal |")
    print("|---|---|---|")
    print(f"| master CPU, % of one core (psutil, whole process) | {cpu:.1f} | <= {CPU_GOAL:g} |")
    print(
        f"| master CPU per round of reports (one from each worker), ms | {10 * cpu * args.interval:.0f} | |"
    )
    for label, kind in [
        ("decode every message (Locust's msgpack)", "decode"),
        ("handle the stats reports (every worker_report listener)", "message:stats"),
        ("... of which our fold (Measurements.fold_report)", "fold"),
        ("handle the heartbeats", "message:heartbeat"),
    ]:
        ms, calls, longest = per_round(kind)
        print(
            f"| {label}: ms of CPU per round (calls in the window; the longest one) | {ms:.1f} ({calls}; "
            f"{longest:.2f} ms) | |"
        )
    ms, calls, longest = per_round("render")
    print(
        f"| render /metrics in the master (MetricsExporter.render): ms of CPU per scrape (the longest) | "
        f"{ms * rounds / max(calls, 1):.1f} ({longest:.1f}) | |"
    )
    print(
        f"| scrape of /metrics, ms (p50 / p95 / max), client wall time | {p50:.1f} / {p95:.1f} / {worst:.1f} | "
        f"< {SCRAPE_GOAL_MS:g} |"
    )
    exact = counted[0] == reported == locust_counted
    print(
        f"| requests reported by the workers / counted by the exporter / by Locust's stats | {reported:,} / "
        f"{counted[0]:,} / {locust_counted or 0:,} | equal |"
    )
    if args.profile:
        print("\n" + profile_summary(workdir / "master.pyspy"))
    ok = cpu <= CPU_GOAL and p95 < SCRAPE_GOAL_MS and exact
    print(
        f"\n{'PASS' if ok else 'FAIL'}: master CPU {cpu:.1f}% (goal <= {CPU_GOAL:g}), scrape p95 {p95:.1f} ms "
        f"(goal < {SCRAPE_GOAL_MS:g}), counts {'equal' if exact else 'DIFFER'}; logs in {workdir}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
