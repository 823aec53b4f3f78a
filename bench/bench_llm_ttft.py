"""What separates the client's TTFT from the emulator's, request by request (bench/RESULTS.md "LLM
client"): the scenario of tests/integration/test_llm_client.py (a master and 2 workers, 8 users at
half the batch capacity, the OpenAI route or the response stream), with synthetic prompts of
distinct lengths so that each request's client record (bench/locustfile_ttft.py) pairs with the
emulator's (``/_emulator/requests``) by its prompt tokens. Prints the per-request offset (client TTFT
- emulator TTFT) percentiles of each run, and the largest offsets with the request's place in the
client's order of completion (the first requests of a worker come first). ``--checkouts A B``
alternates the load generator and emulator of two checkouts (each with its .venv), run by run.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_ttft.py --runs 3
    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_ttft.py --checkouts ../main-checkout . --runs 3
    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_ttft.py --scenario peers --apis openai --seconds 20
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
CONFIG = """
endpoints:
  - name: chat
    variants:
      - name: v
        llm: {max_batch: 16, kv_cache_tokens: 1000000, prefill_ms_per_token: 0.02, decode: {base_ms: 4, per_seq_ms: 0.25}}
"""
# bench_llm_client.py's scenario: 32 streams in one process, 128 tokens, constant 20-ms steps, batch 64
PEERS_CONFIG = """
endpoints:
  - name: chat
    variants:
      - name: v
        llm: {max_batch: 64, kv_cache_tokens: 10000000, prefill_ms_per_token: 0, decode: {base_ms: 20, per_seq_ms: 0}}
"""
SCENARIOS = {  # config, users, output tokens, processes
    "test": (CONFIG, 8, 64, 2),
    "peers": (PEERS_CONFIG, 32, 128, 1),
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def one_run(api: str, seconds: int, work: Path, bin_dir: Path = BIN, scenario: str = "test") -> str:
    config, users, output_tokens, processes = SCENARIOS[scenario]
    (work / "llm.yaml").write_text(config)
    port = free_port()
    emulator = subprocess.Popen(
        [
            str(bin_dir / "smload"),
            "emulator",
            "--config",
            str(work / "llm.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = work / "ttft.txt"
    out.unlink(missing_ok=True)
    try:
        for _ in range(100):
            try:
                get(f"http://127.0.0.1:{port}/_emulator/stats")
                break
            except OSError:
                time.sleep(0.1)
        master = str(free_port())
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID="AKIDBENCH",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            SMLOAD_TTFT_OUT=str(out),
        )
        result = subprocess.run(
            [
                str(bin_dir / "locust"),
                "-f",
                str(REPO / "bench" / "locustfile_ttft.py"),
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{seconds}s",
                "--endpoint-name",
                "chat",
                "--endpoint-url",
                f"http://127.0.0.1:{port}",
                "--region",
                "us-east-1",
                "--api",
                api,
                "--prompt-tokens",
                "uniform:min=8,max=1500",
                "--dataset-size",
                "1500",
                "--output-tokens",
                str(output_tokens),
                "--metrics-port",
                "0",
                *(
                    [
                        "--processes",
                        str(processes),
                        "--master-bind-host",
                        "127.0.0.1",
                        "--master-bind-port",
                        master,
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        master,
                    ]
                    if processes > 1
                    else []
                ),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        journal = get(f"http://127.0.0.1:{port}/_emulator/requests")["endpoints"]["chat"]["variants"]["v"]
    finally:
        emulator.terminate()
        emulator.wait()
    ours = [(int(a), float(b)) for a, b in (line.split() for line in out.read_text().splitlines())]
    theirs = list(zip(journal["input_tokens"], journal["ttft_ms"], strict=True))
    n_ours, n_theirs = collections.Counter(n for n, _ in ours), collections.Counter(n for n, _ in theirs)
    client = {n: (i, ms) for i, (n, ms) in enumerate(ours) if n_ours[n] == 1}
    server = {n: ms for n, ms in theirs if n_theirs[n] == 1}
    pairs = sorted(
        ((client[n][1] - server[n], client[n][0]) for n in client.keys() & server.keys()), reverse=True
    )
    offsets = sorted(d for d, _ in pairs)

    def q(p: float) -> float:
        return offsets[min(len(offsets) - 1, int(p * len(offsets)))]

    health = next((line for line in result.stdout.splitlines() if line.startswith("generator health")), "")
    return (
        f"{api}: {len(offsets)} requests paired of {len(ours)}; offset ms min {offsets[0]:.2f}, p10 {q(0.1):.2f}, "
        f"p50 {q(0.5):.2f}, mean {statistics.mean(offsets):.2f}, p90 {q(0.9):.2f}, max {offsets[-1]:.2f}; "
        f"largest (ms, place): {[(round(d, 1), i) for d, i in pairs[:5]]}; load {os.getloadavg()[0]:.1f}; {health}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--apis", nargs="+", default=["openai", "stream"])
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[REPO])
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="test",
        help="test: the accuracy test's (default); peers: bench_llm_client.py's, 32 streams in one process",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-llm-ttft-"))
    for _ in range(args.runs):
        for api in args.apis:
            for checkout in args.checkouts:
                line = one_run(api, args.seconds, work, checkout.resolve() / ".venv" / "bin", args.scenario)
                print(f"{checkout}: {line}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
