"""The bundled locustfile, plus one line per LLM request to ``$SMLOAD_TTFT_OUT``: its prompt tokens
and its TTFT as the worker measured it (``bench/bench_llm_ttft.py`` pairs them with the emulator's
per-request truth)."""

import os

from locust import events

from smload.locustfile import *  # noqa: F403 - the User classes
from smload.record import INPUT_TOKENS, RECORD, TTFT

_OUT = open(os.environ["SMLOAD_TTFT_OUT"], "a")  # noqa: SIM115 - one per process, for its life


@events.request.add_listener
def _record(context=None, **_kwargs) -> None:
    record = (context or {}).get(RECORD)
    if record is None:
        return
    ttft = [ms for kind, ms in record.timings if kind == TTFT]
    tokens = [n for kind, n in record.counts if kind == INPUT_TOKENS]
    if ttft and tokens:
        _OUT.write(f"{tokens[0]} {ttft[0]}\n")
        _OUT.flush()
