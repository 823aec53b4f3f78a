"""Requests per CPU-second of the clients of two checkouts, A and B (e.g. a commit before a change and
a branch), in alternating rounds against one emulator: ``bench_core.py``'s own throughput round (the
bundled locustfile, 32 users, core 0; the emulator, zero latency, core 1), each checkout with its own
``bench_core.py``, locustfiles and ``.venv``. The order flips every round, so that the machine's
drift falls on both alike; the figure that matters is the ratio B/A taken pair by pair (round by
round) and its median. ``--kinds fast,fasthttp`` adds Locust's ``FastHttpUser`` baseline (each
checkout's ``bench/locustfile_fasthttp.py``), and with it each checkout's fast / FastHttpUser ratio.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_core_ab.py /path/to/main /path/to/branch \
        [--kinds fast,fasthttp] [--rounds 6]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
from pathlib import Path


def bench_core_of(root: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, root / "bench" / "bench_core.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.BIN = root / ".venv" / "bin"  # that checkout's Locust and emulator
    return module


def commit_of(root: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="checkout A (with its .venv)")
    parser.add_argument("b", type=Path, help="checkout B (with its .venv)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument(
        "--kinds", default="fast", help="clients, comma-separated: fast, fasthttp, boto3 (default fast)"
    )
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    a, b = bench_core_of(args.a.resolve(), "bench_core_a"), bench_core_of(args.b.resolve(), "bench_core_b")
    workdir = Path(tempfile.mkdtemp(prefix="bench-core-ab-"))
    payload = workdir / "payload.json"
    payload.write_bytes(a.BODY)
    emulator = a.Emulator(0, cpu=1, workdir=workdir)
    results: dict[tuple[str, str], list[float]] = {(kind, label): [] for kind in kinds for label in "AB"}
    try:
        for number in range(args.rounds):
            for kind in kinds:
                order = [("A", a), ("B", b)] if number % 2 == 0 else [("B", b), ("A", a)]
                for label, module in order:
                    result = module.throughput_round(kind, emulator, payload, args.users, 4.0, 8.0)
                    results[kind, label].append(result["per_cpu_s"])
                    print(
                        f"round {number + 1} {kind:>8} {label}: {result['per_cpu_s']:8.0f} req/CPU-s"
                        f"  {result['rps']:8.0f} req/s  CPU {100 * result['cpu_share']:.0f}%",
                        flush=True,
                    )
    finally:
        emulator.stop()
    print(f"\nA = {args.a} ({commit_of(args.a)}), B = {args.b} ({commit_of(args.b)})\n")
    print(
        "| client | checkout | req per CPU-second (each round) | median | stdev | B/A (each pair) | median |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        ratios = [y / x for x, y in zip(results[kind, "A"], results[kind, "B"], strict=True)]
        for label in "AB":
            each = results[kind, label]
            pairs = (
                (", ".join(f"{r:.3f}" for r in ratios), f"{statistics.median(ratios):.3f}")
                if label == "B"
                else ("", "")
            )
            print(
                f"| {kind} | {label} | {', '.join(f'{x:,.0f}' for x in each)} | {statistics.median(each):,.0f} | "
                f"{statistics.stdev(each) if len(each) > 1 else 0:,.0f} | {pairs[0]} | {pairs[1]} |"
            )
    if "fast" in kinds and "fasthttp" in kinds:
        for label in "AB":
            per_round = [
                f / h for f, h in zip(results["fast", label], results["fasthttp", label], strict=True)
            ]
            print(
                f"\n{label}: fast / FastHttpUser = {statistics.median(per_round):.2f} (median of the rounds' ratios: "
                f"{', '.join(f'{r:.2f}' for r in per_round)})"
            )


if __name__ == "__main__":
    main()
