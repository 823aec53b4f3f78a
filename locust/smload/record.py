"""What one request tells the measurements, passed from the client to :mod:`smload.measure` inside
Locust's ``request`` event (``context[RECORD]``): who it was for (:class:`Identity`) and what was
timed and counted besides the headline latency. Structured, so that no consumer parses a name.

The ground floor of the house: the client (``smload.invoke``) builds records and ``smload.measure``
reads them, and neither imports the other. Import-light: the standard library only.
"""

from __future__ import annotations

from typing import NamedTuple

# request_type of each API (DESIGN.md "Request identity")
INVOKE = "InvokeEndpoint"
STREAM = "InvokeEndpointWithResponseStream"
CHAT = "ChatCompletions"
HTTP = "HTTP"  # the inference container's own API (no SageMaker front end)
APIS = (INVOKE, STREAM, CHAT, HTTP)

UNKNOWN = "unknown"  # the target of a request that reached no variant and named none

# Kinds of timing (ms), each a histogram of its own per identity.
LATENCY = "latency"  # the headline response time, to the last byte (Locust's response_time)
TTFB = "ttfb"  # to the first part of a response stream
PER_PART = "per_part"  # mean time between a stream's parts, one value per stream
# LLM requests (smload.invoke.llm): tokens parsed as they arrive
TTFT = "ttft"  # to the first generated token
ITL = "itl"  # every gap between two tokens of a request (one value per token after the first)
TPOT = "tpot"  # per request: (e2e - TTFT) / (output tokens - 1)
# Open loop (smload.load): the headline latency and TTFB run from the arrival's intended start;
# these two say how it splits.
SERVICE = "service"  # from the actual send to the last byte (what a closed-loop tool reports)
SCHEDULE_LAG = "schedule_lag"  # actual send - intended start: the load generator's own delay

# Counters besides requests, failures and response bytes.
PARTS = "parts"  # PayloadParts received
# prompt tokens of LLM requests (from usage, else a tokenizer, else not counted)
INPUT_TOKENS = "input_tokens"
OUTPUT_TOKENS = "output_tokens"  # generated tokens (from usage, else a tokenizer, else one per content chunk)
GOODPUT = "goodput"  # LLM requests that succeeded and met every --goodput objective
# how each LLM request's tokens were counted, one per request: the summary says which
COUNTED_BY_USAGE = "tokens_by_usage"
COUNTED_BY_TOKENIZER = "tokens_by_tokenizer"
COUNTED_BY_CHUNKS = "tokens_by_chunks"
TOKEN_SOURCES = {COUNTED_BY_USAGE: "usage", COUNTED_BY_TOKENIZER: "tokenizer", COUNTED_BY_CHUNKS: "chunks"}

# Open-loop arrivals (not per identity: a dropped arrival never had one), counted by the process
# that scheduled them: every arrival, and those dropped because the in-flight ceiling was reached.
ARRIVALS = "arrivals"
DROPPED = "dropped"

RECORD = "smload"  # the key of a Record in the request event's context


class Identity(NamedTuple):
    """Who a request was for. ``name`` is Locust's entry name (``<endpoint>/<target>`` unless a
    custom name was given); ``endpoint`` and ``target`` (the production variant, or the inference
    component) are None for requests our client did not make (a custom locustfile's own)."""

    api: str
    name: str
    endpoint: str | None = None
    target: str | None = None

    @classmethod
    def of(cls, api: str, endpoint: str, target: str | None, name: str | None = None) -> Identity:
        target = target or UNKNOWN
        return cls(api, name or f"{endpoint}/{target}", endpoint, target)

    @property
    def invocation(self) -> bool:
        """A request to an endpoint API (not the container's, not a custom locustfile's own)."""
        return self.api in (INVOKE, STREAM, CHAT)


class Record(NamedTuple):
    identity: Identity
    timings: tuple[tuple[str, float], ...] = ()  # (kind, ms) besides the headline latency; repeatable
    counts: tuple[tuple[str, int], ...] = ()  # (counter, n)
