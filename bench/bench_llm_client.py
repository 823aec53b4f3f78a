"""LLM load generators side by side against one emulator route (bench/RESULTS.md "LLM client").

smload (``locust --api openai``, one process), AIPerf and GuideLLM (PyPI, in ``bench/.peers``: ``make
peers``) stream chat completions from the emulator's OpenAI-compatible route at
the same concurrency with the same synthetic lengths (prompt 32 tokens, output 128), one after the
other. For each: output tokens parsed per CPU-second of the generating processes (the emulator's
exact token count over the tool's user + system CPU, its reaped child processes included: ``wait4``),
and its TTFT and ITL p50/p99 against the emulator's truth (``/_emulator/stats``). AIPerf's ITL is a
per-request mean (its definition), GuideLLM's too; ours is every gap.

``--streams N --rate R`` instead: one smload worker process (core 0) holding N streams of R tokens/s
each against the emulator (core 1; step 1000/R ms whatever the batch, batch and queue N): tokens/s
written in steady state against the target, the worker's CPU over the same window, its ITL/TPOT
against the emulator's (``--profile FILE``: py-spy's profile of the worker).

    make peers    # once: CPU torch, then AIPerf and GuideLLM in bench/.peers
    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_client.py
    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_client.py --streams 1000 --rate 50
    .venv/bin/pip install py-spy    # for --profile
    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_llm_client.py --streams 1000 --rate 50 \
        --checkouts ../main-checkout . --rounds 2        # two checkouts in turn
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
PEERS = REPO / "bench" / ".peers" / "bin"
PROMPT, OUTPUT = 32, 128


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10).read()


def tokenizer_dir(where: Path) -> Path:
    """A small BPE tokenizer built here (nothing comes from a hub), as a transformers directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = [
        "the cat and the dog sat on the mat in the sun",
        "it is what it is for all of you",
        "how now brown cow, the day may end",
    ] * 50
    t = Tokenizer(models.BPE(unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["[UNK]", "<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    where.mkdir(parents=True, exist_ok=True)
    t.save(str(where / "tokenizer.json"))
    (where / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "[UNK]",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "model_max_length": 100000,
            }
        )
    )
    return where


def pinned(cpu: int | None) -> list[str]:
    """On core ``cpu`` alone (and, as root, ahead of other work on this shared machine: nice -10)."""
    if cpu is None:
        return []
    return [*(["nice", "-n", "-10"] if os.geteuid() == 0 else []), "taskset", "-c", str(cpu)]


def start_emulator(config: Path, port: int, cpu: int | None = None, bin_dir: Path = BIN) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            *pinned(cpu),
            str(bin_dir / "smload"),
            "emulator",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            get(f"http://127.0.0.1:{port}/_emulator/stats")
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[int, float, str]:
    """Run ``cmd``; its exit code, the CPU seconds of it and its reaped children, and its output."""
    log = cwd / "tool.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, log.read_text()


def truth(port: int) -> dict:
    v = get(f"http://127.0.0.1:{port}/_emulator/stats")["endpoints"]["chat"]["variants"]["v"]
    return v


def error(ours: float | None, server: float) -> str:
    return "n/a" if ours is None else f"{ours - server:+.2f} ms ({(ours - server) / server:+.1%})"


def peers(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    tok = tokenizer_dir(work / "tok")
    config = work / "llm.yaml"
    config.write_text(f"""
endpoints:
  - name: chat
    variants:
      - name: v
        llm: {{max_batch: {2 * args.concurrency}, kv_cache_tokens: 10000000, decode: {{base_ms: {args.step_ms},
              per_seq_ms: 0}}, tokenizer: tok/tokenizer.json}}
""")
    port = args.port
    emulator = start_emulator(config, port)
    base = f"http://127.0.0.1:{port}/endpoints/chat/openai"
    c, seconds = str(args.concurrency), str(args.seconds)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    tools = {
        "smload": [
            str(BIN / "locust"),
            "-f",
            str(REPO / "locust" / "locustfile.py"),
            "--headless",
            "-u",
            c,
            "-r",
            c,
            "-t",
            f"{seconds}s",
            "--endpoint-name",
            "chat",
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
            "--region",
            "us-east-1",
            "--api",
            "openai",
            "--prompt-tokens",
            str(PROMPT),
            "--output-tokens",
            str(OUTPUT),
            "--report",
            str(work / "smload"),
            "--metrics-port",
            "0",
            "--only-summary",
        ],
        "aiperf": [
            str(PEERS / "aiperf"),
            "profile",
            "--model",
            "m",
            "--url",
            base,
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            c,
            "--benchmark-duration",
            seconds,
            "--synthetic-input-tokens-mean",
            str(PROMPT),
            "--output-tokens-mean",
            str(OUTPUT),
            "--tokenizer",
            str(tok),
            "--api-key",
            "x",
            "--artifact-dir",
            str(work / "aiperf"),
            "--ui",
            "none",
        ],
        "guidellm": [
            str(PEERS / "guidellm"),
            "run",
            "--backend",
            f"kind=openai_http,target={base},model=m,api_key=x,validate_backend=false",
            "--profile",
            f"kind=concurrent,streams={c}",
            "--constraint",
            f"kind=max_duration,seconds={seconds}",
            "--data",
            f"kind=synthetic_text,prompt_tokens={PROMPT},output_tokens={OUTPUT}",
            "--tokenizer",
            f"kind=hf_auto,model={tok}",
            "--output",
            f"kind=json,path={work / 'guidellm.json'}",
            "--disable-progress",
        ],
    }
    rows = []
    try:
        for name in args.tools:
            post(f"http://127.0.0.1:{port}/_emulator/reset")
            tool_env = dict(env, HF_HUB_OFFLINE="1") if name == "guidellm" else env
            code, cpu, log = timed(tools[name], tool_env, work)
            server = truth(port)
            llm = server["llm"]
            ttft, itl = read_tool(name, work)
            rows.append((name, code, cpu, llm["output_tokens"], ttft, itl, llm))
            if code != 0:
                print(f"{name} exited {code}:\n{log[-3000:]}", file=sys.stderr)
    finally:
        emulator.terminate()
        emulator.wait()
    print(
        f"\nconcurrency {args.concurrency}, {args.seconds} s each, prompt {PROMPT} / output {OUTPUT} tokens, "
        f"emulator step {args.step_ms} ms ({1000 / args.step_ms:.0f} tokens/s per stream)\n"
    )
    print(
        "| tool | exit | output tokens (emulator) | CPU s | tokens per CPU-second | TTFT p50 error | TTFT p99 error "
        "| ITL p50 error | ITL p99 error |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, code, cpu, tokens, ttft, itl, llm in rows:
        print(
            f"| {name} | {code} | {tokens:,} | {cpu:.2f} | {tokens / cpu:,.0f} | {error(ttft[0], llm['ttft_ms']['p50'])} "
            f"| {error(ttft[1], llm['ttft_ms']['p99'])} | {error(itl[0], llm['itl_ms']['p50'])} "
            f"| {error(itl[1], llm['itl_ms']['p99'])} |"
        )
    print(
        f"\nemulator truth (last run): TTFT p50 {rows[-1][6]['ttft_ms']['p50']} ms, p99 {rows[-1][6]['ttft_ms']['p99']} ms;"
        f" ITL p50 {rows[-1][6]['itl_ms']['p50']} ms, p99 {rows[-1][6]['itl_ms']['p99']} ms"
    )


def read_tool(
    name: str, work: Path
) -> tuple[tuple[float | None, float | None], tuple[float | None, float | None]]:
    """(TTFT p50, p99), (ITL p50, p99) as the tool reported them, ms."""
    try:
        if name == "smload":
            n = json.loads((work / "smload" / "report.json").read_text())["names"][0]
            return (n["ttft_ms"]["p50"], n["ttft_ms"]["p99"]), (n["itl_ms"]["p50"], n["itl_ms"]["p99"])
        if name == "aiperf":
            d = json.loads((work / "aiperf" / "profile_export_aiperf.json").read_text())
            return (
                (d["time_to_first_token"]["p50"], d["time_to_first_token"]["p99"]),
                (d["inter_token_latency"]["p50"], d["inter_token_latency"]["p99"]),
            )
        m = json.loads((work / "guidellm.json").read_text())["benchmarks"][0]["metrics"]
        t, i = m["time_to_first_token_ms"]["successful"], m["inter_token_latency_ms"]["successful"]
        return (
            (t["percentiles"]["p50"], t["percentiles"]["p99"]),
            (i["percentiles"]["p50"], i["percentiles"]["p99"]),
        )
    except (OSError, KeyError, IndexError, ValueError):
        return (None, None), (None, None)


def streams(args: argparse.Namespace) -> None:
    """``--rounds`` of :func:`streams_once`, each round once per ``--checkouts`` (alternating)."""
    for number in range(args.rounds):
        for checkout in args.checkouts:
            print(f"round {number + 1}, {checkout}:", flush=True)
            streams_once(args, checkout.resolve() / ".venv" / "bin")


def streams_once(args: argparse.Namespace, bin_dir: Path) -> None:
    """One worker process holding ``--streams`` streams at ``--rate`` tokens/s each. The emulator
    (one instance, a batch as large as the streams, a queue as deep) is never the limit: its step is
    1000/rate ms whatever the batch. The figure is the tokens the emulator wrote over a window in
    steady state (after the ramp): a worker that falls behind reads its streams late and sends its
    next requests late, so fewer are written. The worker's CPU over the same window, its own ITL
    and TPOT against the emulator's, and its health line say why where it falls short."""
    import psutil

    work = Path(tempfile.mkdtemp(prefix="bench-llm-streams-"))
    step = 1000.0 / args.rate
    config = work / "llm.yaml"
    config.write_text(f"""
endpoints:
  - name: chat
    variants:
      - name: v
        queue: {{max_depth: {args.streams}}}
        llm: {{max_batch: {args.streams}, kv_cache_tokens: 100000000, decode: {{base_ms: {step}, per_seq_ms: 0}}}}
""")
    emulator = start_emulator(config, args.port, cpu=1, bin_dir=bin_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    n = str(args.streams)
    ramp = max(1.0, args.streams / args.spawn_rate)
    seconds = ramp + args.warmup + args.window + 2
    cmd = [
        *pinned(0),
        str(bin_dir / "locust"),
        "-f",
        str(REPO / "locust" / "locustfile.py"),
        "--headless",
        "-u",
        n,
        "-r",
        str(args.spawn_rate),
        "-t",
        f"{seconds:.0f}s",
        "--stop-timeout",
        "30",
        "--endpoint-name",
        "chat",
        "--endpoint-url",
        f"http://127.0.0.1:{args.port}",
        "--region",
        "us-east-1",
        "--api",
        args.api,
        "--prompt-tokens",
        "8",
        "--output-tokens",
        str(args.output),
        "--report",
        str(work / "r"),
        "--metrics-port",
        "0",
        "--only-summary",
    ]
    if args.profile:
        cmd = [
            str(BIN / "py-spy"),
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            str(args.profile),
            "--",
            *cmd,
        ]
    log = work / "locust.log"
    try:
        with log.open("w") as out:
            locust = subprocess.Popen(cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
            time.sleep(ramp + args.warmup)
            process = psutil.Process(locust.pid)
            if args.profile:  # py-spy runs Locust as its child
                process = process.children()[0]
            times = process.cpu_times()
            cpu0, tokens0, t0 = (
                times.user + times.system,
                truth(args.port)["llm"]["output_tokens"],
                time.monotonic(),
            )
            time.sleep(args.window)
            times = process.cpu_times()
            cpu1, tokens1, t1 = (
                times.user + times.system,
                truth(args.port)["llm"]["output_tokens"],
                time.monotonic(),
            )
            code = locust.wait(timeout=seconds + 120)
        llm = truth(args.port)["llm"]
    finally:
        emulator.terminate()
        emulator.wait()
    report = json.loads((work / "r" / "report.json").read_text())["names"][0]
    rate, cpu = (tokens1 - tokens0) / (t1 - t0), (cpu1 - cpu0) / (t1 - t0)
    print(
        f"{args.streams} streams x {args.rate:g} tokens/s ({args.api}, {args.output} tokens a request), exit {code}: "
        f"{rate:,.0f} tokens/s written in steady state over {args.window:g} s (target {args.streams * args.rate:,.0f},"
        f" {rate / (args.streams * args.rate):.0%}); worker CPU {cpu:.0%} of a core over that window, "
        f"{(tokens1 - tokens0) / max(cpu1 - cpu0, 1e-9):,.0f} tokens per CPU-second"
    )
    print(
        f"  whole run: ITL p50 {report['itl_ms']['p50']} ms (emulator {llm['itl_ms']['p50']}), p99 "
        f"{report['itl_ms']['p99']} ms (emulator {llm['itl_ms']['p99']}); TPOT p50 {report['tpot_ms']['p50']} ms "
        f"(emulator {llm['tpot_ms']['p50']}), p99 {report['tpot_ms']['p99']} ms (emulator {llm['tpot_ms']['p99']}); "
        f"TTFT p50 {report['ttft_ms']['p50']} ms (emulator {llm['ttft_ms']['p50']})"
    )
    print("\n".join("  " + line for line in log.read_text().splitlines() if "generator" in line))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--step-ms", type=float, default=20.0, help="the emulator's step: 1000/step tokens/s per stream"
    )
    parser.add_argument("--tools", nargs="+", default=["smload", "aiperf", "guidellm"])
    parser.add_argument("--port", type=int, default=18791)
    parser.add_argument("--streams", type=int, help="the one-worker stream test instead: this many streams")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s per stream for --streams")
    parser.add_argument("--output", type=int, default=200, help="output tokens per request for --streams")
    parser.add_argument(
        "--spawn-rate", type=float, default=200.0, help="users started per second for --streams"
    )
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds after the ramp before the window")
    parser.add_argument(
        "--window", type=float, default=20.0, help="the steady-state window of --streams, seconds"
    )
    parser.add_argument(
        "--profile", type=Path, help="--streams: py-spy's raw profile of the worker to this file"
    )
    parser.add_argument("--api", default="openai", choices=["openai", "stream"])
    parser.add_argument("--rounds", type=int, default=1, help="--streams: runs of each checkout")
    parser.add_argument(
        "--checkouts",
        nargs="+",
        type=Path,
        default=[REPO],
        help="--streams: checkouts (each with its .venv) in turn",
    )
    args = parser.parse_args()
    streams(args) if args.streams else peers(args)


if __name__ == "__main__":
    main()
