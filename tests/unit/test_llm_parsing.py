"""The LLM client's pure parts: stream frames split anywhere, the three formats, --goodput and the
length distributions (their bad input: one line naming the option)."""

from __future__ import annotations

import random

import pytest

from smload.invoke import datasets, llm
from smload.invoke.token_stream import TokenStream, parse_body

OPENAI = (
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":" the"}}],"usage":null}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":" and"}}],"usage":null}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n"
)
TGI = (
    b'data:{"index":0,"token":{"id":1,"text":" a","logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"index":1,"token":{"id":2,"text":" b","logprob":-0.1,"special":false},"generated_text":" a b",'
    b'"details":{"finish_reason":"length","generated_tokens":2,"input_length":5}}\n\n'
)
LMI = (
    b'{"token":{"id":1,"text":" a","log_prob":-0.1}}\n'
    b'{"token":{"id":2,"text":" b","log_prob":-0.1},"generated_text":" a b","details":{"generated_tokens":2,'
    b'"input_length":5}}\n'
)


@pytest.mark.parametrize(
    "data, text, counts",
    [(OPENAI, " the and", (7, 2)), (TGI, " a b", (5, 2)), (LMI, " a b", (5, 2))],
    ids=["openai", "tgi", "lmi"],
)
def test_every_format_split_at_every_byte_gives_the_same_tokens(data, text, counts):
    for cut in range(1, len(data)):
        stream = TokenStream(want_text=True)
        stream.feed(data[:cut], 1.0)
        stream.feed(data[cut:], 2.0)
        stream.close(3.0)
        assert stream.chunks == 2 and "".join(stream.texts) == text, cut
        assert (stream.input_tokens, stream.output_tokens) == counts
        assert len(stream.gaps) == 1 and stream.first is not None


def test_gaps_are_between_token_frames_and_the_role_chunk_is_no_token():
    stream = TokenStream()
    events = OPENAI.split(b"\n\n")
    for t, event in enumerate(events):
        stream.feed(event + b"\n\n", float(t))
    assert stream.first == 1.0 and stream.gaps == [1.0] and stream.done


def test_whole_answers_give_their_counts():
    body = (
        b'{"choices":[{"message":{"content":"hi there"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
    )
    answer = parse_body(body, want_text=True)
    assert (answer.input_tokens, answer.output_tokens, answer.texts) == (3, 2, ["hi there"])
    tgi = parse_body(b'[{"generated_text":"x","details":{"generated_tokens":4}}]', want_text=False)
    assert tgi.output_tokens == 4


def test_goodput_objectives():
    good = llm.goodput("ttft<500ms, tpot<=0.05s")
    assert good.good(499, 50, 1000) and not good.good(500, 10, 1000) and not good.good(10, 50.1, 1000)
    assert good.good(10, None, 10)  # one token: no TPOT
    for bad in ("ttft<fast", "ttft>5ms", "", "latency<5ms", "ttft<5"):
        with pytest.raises(ValueError):
            llm.goodput(bad)


def test_distributions_draw_within_their_bounds_and_are_seedable():
    spec = datasets.distribution("lognormal:median=100,p99=400,max=300")
    draws = [spec.draw(random.Random(1)) for _ in range(3)]
    assert draws == [spec.draw(random.Random(1)) for _ in range(3)]
    many = [spec.draw(random.Random(i)) for i in range(500)]
    assert 1 <= min(many) and max(many) <= 300 and 80 <= sorted(many)[250] <= 120
    assert datasets.distribution("64").draw(random.Random()) == 64
    for bad in ("0", "normal:mean=5", "gamma:k=1", "uniform:min=5,max=1", "lognormal:median=5,p99=1"):
        with pytest.raises(ValueError):
            datasets.distribution(bad)
