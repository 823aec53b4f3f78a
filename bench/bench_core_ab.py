"""The ``fast`` client's requests per CPU-second in two checkouts, A and B (e.g. main and a branch),
in alternating rounds against one emulator: ``bench_core.py``'s own throughput round (the bundled
locustfile, 32 users, core 0; the emulator, zero latency, core 1), so that the machine's noise falls
on both alike. Each checkout runs with its own ``.venv``.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_core_ab.py /path/to/main /path/to/branch
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
from pathlib import Path


def bench_core_of(root: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, root / "bench" / "bench_core.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.BIN = root / ".venv" / "bin"  # that checkout's Locust and emulator
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="checkout A (with its .venv)")
    parser.add_argument("b", type=Path, help="checkout B (with its .venv)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()
    a, b = bench_core_of(args.a.resolve(), "bench_core_a"), bench_core_of(args.b.resolve(), "bench_core_b")
    workdir = Path(tempfile.mkdtemp(prefix="bench-core-ab-"))
    payload = workdir / "payload.json"
    payload.write_bytes(a.BODY)
    emulator = a.Emulator(0, cpu=1, workdir=workdir)
    results: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for number in range(args.rounds):
            order = [("A", a), ("B", b)] if number % 2 == 0 else [("B", b), ("A", a)]
            for label, module in order:
                result = module.throughput_round("fast", emulator, payload, args.users, 4.0, 8.0)
                results[label].append(result["per_cpu_s"])
                print(
                    f"round {number + 1} {label}: {result['per_cpu_s']:8.0f} req/CPU-s  {result['rps']:8.0f} req/s"
                    f"  CPU {100 * result['cpu_share']:.0f}%",
                    flush=True,
                )
    finally:
        emulator.stop()
    print("\n| checkout | req per CPU-second (each round) | median | stdev |")
    print("|---|---|---|---|")
    for label, root in (("A", args.a), ("B", args.b)):
        each = results[label]
        print(
            f"| {label} {root} | {', '.join(f'{x:,.0f}' for x in each)} | {statistics.median(each):,.0f} | "
            f"{statistics.stdev(each):,.0f} |"
        )


if __name__ == "__main__":
    main()
