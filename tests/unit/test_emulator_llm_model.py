"""LLM variants: configuration (file, flags, mistakes), the token rule (characters or a real
tokenizer built here with ``tokenizers``), the wire frames of each format, and the closed form."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from smload.emulator import config as cfg
from smload.emulator import llm_config, token_formats
from smload.emulator.cli import build_parser, load
from smload.emulator.tokens import Tokens
from smload.usage import UsageError


def parse(*argv: str) -> cfg.Config:
    return load(build_parser().parse_args(list(argv)))


def test_llm_variant_from_flags_and_components_from_a_file(tmp_path):
    variant = (
        parse(
            "--endpoint",
            "e",
            "--variant",
            "name=v,instances=2,max_batch=8,decode_ms=2,decode_per_seq_ms=0.5,"
            "kv_cache_tokens=4096,max_tokens=64,format=lmi,output_tokens=10",
        )
        .endpoints[0]
        .variants[0]
    )
    llm = variant.llm
    assert (llm.max_batch, llm.kv_cache_tokens, llm.default_max_tokens, llm.format) == (8, 4096, 64, "lmi")
    assert (llm.decode.base_ms, llm.decode.per_seq_ms, llm.output_tokens.fixed) == (2, 0.5, 10)
    assert variant.slots == 16  # instances x max_batch
    path = tmp_path / "ic.yaml"
    path.write_text(
        "endpoints: [{name: e, inference_components: [{name: a, copies: 3, llm: {max_batch: 4}}, "
        "{name: b, latency: 5}]}]\n"
    )
    config = cfg.load_file(path)
    a, b = config.endpoints[0].components
    assert (a.instances, a.slots, b.llm) == (3, 12, None)
    shown = config.to_json()["endpoints"][0]
    assert "variants" in shown and [c["copies"] for c in shown["inference_components"]] == [3, 1]
    assert (
        shown["inference_components"][0]["llm"]["max_batch"] == 4
        and "llm" not in shown["inference_components"][1]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--variant", "name=a,max_batch=0"], "--variant: max_batch: must be an integer >= 1"),
        (["--variant", "max_batch=1000000"], "--variant: max_batch: must be an integer >= 1 and <= 100000"),
        (["--variant", "decode_ms=1e9"], "--variant: decode_ms: must be a number >= 0 and <= 60000"),
        (["--variant", "format=grpc"], "--variant: format: must be one of openai, tgi, lmi"),
        (
            ["--variant", "decode_ms=0,decode_per_seq_ms=0"],
            "--variant: decode_ms: base_ms and per_seq_ms cannot both be 0",
        ),
        (["--variant", "tokenizer=/nonexistent/tokenizer.json"], "--variant: tokenizer: no such file"),
        (["--variant", "chars_per_token=40"], "--variant: chars_per_token: must be an integer from 1 to 16"),
    ],
)
def test_llm_flag_errors_name_the_key(argv, message):
    with pytest.raises(UsageError) as caught:
        parse("--endpoint", "e", *argv)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "{name: e, inference_components: [{name: a, weight: 1}]}",
            "f.yaml: endpoints[0].inference_components[0]: unknown key 'weight'",
        ),
        (
            "{name: e, variants: [{name: v}], inference_components: [{name: a}]}",
            "f.yaml: endpoints[0].inference_components: an endpoint has variants or inference components, not both",
        ),
        (
            "{name: e, variants: [{name: v, llm: {output_tokens: {median: 0}}}]}",
            "f.yaml: endpoints[0].variants[0].llm.output_tokens.median: must be a number >= 1",
        ),
        (
            "{name: e, variants: [{name: v, llm: {max_bacth: 4}}]}",
            "f.yaml: endpoints[0].variants[0].llm: unknown key 'max_bacth' (did you mean 'max_batch'?)",
        ),
        (
            "{name: e, variants: [{name: v, llm: {tokenizer: broken.json}}]}",
            "f.yaml: endpoints[0].variants[0].llm.tokenizer: cannot load",
        ),
    ],
)
def test_llm_file_errors_name_the_field(tmp_path, text, message):
    (tmp_path / "broken.json").write_text("{not a tokenizer")
    path = tmp_path / "f.yaml"
    path.write_text(f"endpoints: [{text}]\n")
    with pytest.raises(UsageError) as caught:
        cfg.load_file(path)
    assert str(caught.value).startswith(message), str(caught.value)


def test_character_rule_counts_prompts_and_sizes_output_tokens():
    tokens = Tokens(chars_per_token=4)
    assert [tokens.count(t) for t in ("", "abc", "abcd", "abcde", "é" * 8)] == [1, 1, 1, 2, 2]
    text = tokens.text(37)
    assert len(text) == 37 * 4 and tokens.count(text) == 37


def test_a_real_tokenizer_counts_prompts_and_its_output_re_encodes_to_the_count(tmp_path):
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
    tokens = Tokens(tokenizer_path=str(path))
    prompt = "the dog and the cat sat in the sun, for you"
    assert tokens.count(prompt) == len(tokenizer.encode(prompt, add_special_tokens=False).ids)
    text = tokens.text(50)
    assert len(tokenizer.encode(text, add_special_tokens=False).ids) == 50


@pytest.mark.parametrize("fmt", ["openai", "tgi", "lmi"])
def test_every_frame_is_json_and_the_frames_carry_the_text(fmt):
    tokens = Tokens(chars_per_token=3)
    frames = token_formats.Frames(fmt, tokens, token_formats.json_pieces(tokens), "m", include_usage=True)
    n = 20
    raw = [frames.token(i, i == n - 1, input_tokens=7, n=n, reason="length") for i in range(n)]
    docs = [json.loads(f.removeprefix(b"data: ").removeprefix(b"data:")) for f in raw]
    if fmt == "openai":
        assert all(f.startswith(b"data: {") and f.endswith(b"\n\n") for f in raw)
        assert "".join(d["choices"][0]["delta"]["content"] for d in docs) == tokens.text(n)
        assert (
            docs[0]["choices"][0]["delta"]["role"] == "assistant"
            and docs[-1]["choices"][0]["finish_reason"] == "length"
        )
        end = frames.end(7, n).split(b"\n\n")
        assert json.loads(end[0].removeprefix(b"data: "))["usage"] == {
            "prompt_tokens": 7,
            "completion_tokens": n,
            "total_tokens": 27,
        }
        assert end[1] == b"data: [DONE]"
        body = json.loads(frames.body(7, n, "length"))
        assert (
            body["choices"][0]["message"]["content"] == tokens.text(n)
            and body["usage"]["completion_tokens"] == n
        )
    else:
        assert all(f.endswith(b"\n\n" if fmt == "tgi" else b"\n") for f in raw)
        assert "".join(d["token"]["text"] for d in docs) == docs[-1]["generated_text"] == tokens.text(n)
        assert docs[-1]["details"] == {"finish_reason": "length", "generated_tokens": n, "input_length": 7}
        body = json.loads(frames.body(7, n, "eos_token"))
        assert (body[0] if fmt == "tgi" else body)["details"]["finish_reason"] == "eos_token"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{", "Invalid JSON"),
        (b'{"messages": []}', "'messages' is a required property"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens must be at least 1",
        ),
    ],
)
def test_requests_a_container_refuses(body, message):
    with pytest.raises(token_formats.BadRequest, match=message):
        token_formats.parse_request("openai", body)


def test_closed_form():
    llm = llm_config.LLM(
        max_batch=8, kv_cache_tokens=1000, prefill_ms_per_token=0.01
    )  # decode 2 + 0.5 x batch
    assert llm_config.max_concurrency(llm, prompt_tokens=100, max_tokens=100) == 5  # 1000 // 200
    assert llm_config.tokens_per_s(llm, 8, prompt_tokens=0, output_tokens=100) == pytest.approx(8 / 0.006)
    # prefill of 100 tokens spread over 100 output tokens adds 0.01 ms per sequence to each step
    assert llm_config.step_ms_steady(llm, 4, prompt_tokens=100, output_tokens=100) == pytest.approx(
        2 + 0.51 * 4
    )
    assert llm_config.concurrency_at_tpot(llm, 4.0, prompt_tokens=100, output_tokens=100, max_tokens=100) == 3
    assert llm_config.concurrency_at_tpot(llm, 9.0, prompt_tokens=100, output_tokens=100, max_tokens=100) == 5
    assert llm_config.concurrency_at_tpot(llm, 2.4, prompt_tokens=0, output_tokens=100, max_tokens=100) == 0
    assert llm_config.closed_loop_batch(8, 100) == pytest.approx(8 * 100 / 101)
