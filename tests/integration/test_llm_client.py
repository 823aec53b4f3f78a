"""LLM load tests against the LLM emulator, checked against its server-side truth: a master and 2
workers streaming from the OpenAI-compatible route and from InvokeEndpointWithResponseStream at half
the batch capacity.

* TTFT, ITL and TPOT p50 and p99 within 2% + 1 ms of the emulator's own (``/_emulator/stats``);
* input and output token sums exactly the emulator's: from the answers' usage, and with a tokenizer
  file this test builds (answers without usage, counted on the client with the same tokenizer);
* goodput: the share of requests meeting ``ttft<X`` against the same share in the emulator's
  per-request truth (``/_emulator/requests``). The client sees each request a little later than the
  server (the network and the parse, never earlier), so the client's count lies between the truth's
  count below ``X - (2% + 1 ms)`` and below ``X``; both are asserted, and the gap is small;
* bad input: one line, exit code 2, nothing sent.
"""

from __future__ import annotations

import json
import random

import pytest
from testkit.support import distributed_args, http_get, run_locust, start_emulator

OUTPUT_TOKENS = 64
USERS = 8  # half of max_batch: half capacity
CONFIG = """
endpoints:
  - name: chat
    variants:
      - name: v
        llm:
          max_batch: 16
          kv_cache_tokens: 1000000
          prefill_ms_per_token: 0.02
          decode: {base_ms: 4, per_seq_ms: 0.25}
          %s
  - name: classic
    variants:
      - {name: c, concurrency: 4, latency: 5}
"""
GOODPUT_TTFT_MS = 20.0


def within(ours: float, truth: float) -> bool:
    return abs(ours - truth) <= 0.02 * truth + 1.0


def sharegpt(path, rng: random.Random, n: int = 200) -> None:
    """Short and long prompts (8 or 400 tokens of 4 characters): long prefills make TTFT spread."""
    lines = []
    for _ in range(n):
        words = rng.choice((8, 400))
        prompt = "".join(rng.choice((" the", " and", " for", " was")) for _ in range(words))
        lines.append(
            json.dumps(
                {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": "ok"}]}
            )
        )
    path.write_text("\n".join(lines) + "\n")


def run(emulator, tmp_path, *args: str, users: int = USERS, seconds: int = 8):
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--endpoint-name",
        "chat",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--report",
        str(tmp_path / "report"),
        *args,
        *distributed_args(2),
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    return result, {n["name"]: n for n in report["names"]}


@pytest.mark.parametrize("api", ["openai", "stream"])
def test_token_metrics_match_the_emulators_truth(procs, tmp_path, api):
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG % "")
    emulator = start_emulator(procs, "--config", str(config))
    dataset = tmp_path / "sharegpt.jsonl"
    sharegpt(dataset, random.Random(7))
    result, names = run(
        emulator,
        tmp_path,
        "--api",
        api,
        "--dataset",
        str(dataset),
        "--output-tokens",
        str(OUTPUT_TOKENS),
        "--goodput",
        f"ttft<{GOODPUT_TTFT_MS}ms,tpot<100ms",
    )
    ours = names["chat/v"]
    truth = emulator.stats()["endpoints"]["chat"]["variants"]["v"]
    llm = truth["llm"]
    n = truth["requests"]
    if api == "openai":  # the start-up probe of the route: an empty body, refused (400) without generating
        assert truth["status"].get("400") == 1, truth["status"]
        n -= 1
    assert n > 100 and ours["requests"] == n and ours["failures"] == 0, (n, ours["requests"])

    # token counts: exactly the emulator's sums (from usage: OpenAI's usage chunk, details on the stream)
    assert ours["tokens_by_usage"] == n
    assert ours["output_tokens"] == llm["output_tokens"] == n * OUTPUT_TOKENS
    assert ours["input_tokens"] == llm["input_tokens"]
    assert ours["output_tokens_per_s"] > 0

    journal = json.loads(http_get(f"{emulator.url}/_emulator/requests")[1])["endpoints"]["chat"]["variants"][
        "v"
    ]
    print(
        sorted(journal["ttft_ms"])[::10],
        ours["ttft_ms"],
        llm["ttft_ms"],
        ours["tpot_ms"],
        llm["tpot_ms"],
        ours["itl_ms"],
        llm["itl_ms"],
    )
    # TTFT, ITL, TPOT: p50 and p99 within 2% + 1 ms of the server's
    for kind in ("ttft_ms", "itl_ms", "tpot_ms"):
        assert ours[kind]["count"] == llm[kind]["count"], (kind, ours[kind], llm[kind])
        for q in ("p50", "p99"):
            assert within(ours[kind][q], llm[kind][q]), (kind, q, ours[kind][q], llm[kind][q])

    # goodput: the emulator's per-request truth, one request at a time
    assert journal["count"] == n
    ttfts = journal["ttft_ms"]
    tolerance = 0.02 * GOODPUT_TTFT_MS + 1.0
    below = sum(t < GOODPUT_TTFT_MS for t in ttfts)
    surely_below = sum(t < GOODPUT_TTFT_MS - tolerance for t in ttfts)
    good = ours["goodput"]["requests"]
    assert 0.1 * n < surely_below <= good <= below < 0.9 * n, (surely_below, good, below, n)
    assert below - surely_below <= 0.1 * n  # the ambiguous band is thin: the fractions agree within it
    assert ours["goodput"]["fraction"] == pytest.approx(good / n, abs=1e-6)
    assert "tokens counted by: usage" in result.stdout


def test_token_counts_with_a_local_tokenizer_equal_the_emulators(procs, tmp_path):
    """Answers without usage (a template without stream_options): the client counts the prompt and
    the streamed text with the same tokenizer.json as the emulator."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    corpus = ["the cat and the dog sat on the mat in the sun", "it is what it is for all of you"] * 50
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=["[UNK]"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG % "tokenizer: tokenizer.json")
    emulator = start_emulator(procs, "--config", str(config))
    template = tmp_path / "body.json"
    template.write_text(
        '{"model": "m", "messages": [{"role": "user", "content": "{{prompt}}"}], '
        '"max_tokens": "{{max_tokens}}", "stream": true}'
    )
    result, names = run(
        emulator,
        tmp_path,
        "--api",
        "openai",
        "--request-template",
        str(template),
        "--prompt-tokens",
        "uniform:min=5,max=50",
        "--output-tokens",
        "normal:mean=40,sd=10,min=2",
        "--tokenizer",
        str(path),
        "--dataset-seed",
        "3",
        users=8,
        seconds=4,
    )
    ours = names["chat/v"]
    llm = emulator.stats()["endpoints"]["chat"]["variants"]["v"]["llm"]
    assert ours["requests"] > 20 and ours["tokens_by_tokenizer"] == ours["requests"]
    assert "tokens_by_usage" not in ours
    assert ours["output_tokens"] == llm["output_tokens"] and ours["input_tokens"] == llm["input_tokens"]
    assert "tokens counted by: tokenizer" in result.stdout


def _refused(emulator, endpoint: str, *args: str) -> str:
    result = run_locust(
        "--headless",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "3s",
        "--metrics-port",
        "0",
        "--endpoint-name",
        endpoint,
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        *args,
    )
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


def test_bad_input_is_one_line_exit_2_and_nothing_is_sent(procs, tmp_path):
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG % "")
    emulator = start_emulator(procs, "--config", str(config))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"conversations": [{"from": "human", "value": "hi"}]}) + "\n{not json\n")
    cases = [
        (
            ("--api", "openai", "--prompt-tokens", "8", "--tokenizer", str(tmp_path / "missing.json")),
            "--tokenizer",
        ),
        (("--api", "stream", "--dataset", str(bad)), f"--dataset: {bad}:2: invalid JSON"),
        (("--api", "openai", "--prompt-tokens", "8", "--goodput", "ttft<fast"), "--goodput: 'ttft<fast'"),
        (("--api", "openai", "--prompt-tokens", "8", "--goodput", "ttft<500ms,tpot"), "--goodput: 'tpot'"),
        (("--api", "openai", "--prompt-tokens", "lognormal:median=5"), "--prompt-tokens"),
    ]
    for args, expected in cases:
        line = _refused(emulator, "chat", *args)
        assert expected in line, (args, line)
    assert emulator.stats()["requests"] == 0  # nothing sent

    # --api openai against a classic model: the one probe (an empty body, which generates nothing) is
    # answered 404 by its container; no load follows
    line = _refused(emulator, "classic", "--api", "openai", "--prompt-tokens", "8")
    assert "--api: openai: classic has no OpenAI-compatible route" in line, line
    classic = emulator.stats()["endpoints"]["classic"]["variants"]
    assert emulator.stats()["requests"] == 1 and sum(v["requests"] for v in classic.values()) == 1
