"""The capacity model of one production variant: ``instances x concurrency`` slots, a FIFO queue
when all are busy, a latency per request, and the faults it injects.

Time is kept on the monotonic clock in *nominal* terms: a request taken from the queue starts at the
instant the slot it gets became free (the previous request's due time), not when the event loop
got round to it. Timer jitter therefore never accumulates: a variant with 4 slots and 20 ms serves
200 requests per second over any long run (``slots / latency``), even on a busy machine.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque

from smload import errors

from .config import ErrorSpec, Variant

DROP = ErrorSpec("drop")  # a fault that closes the connection without an answer


class VariantRuntime:
    __slots__ = (
        "endpoint",
        "name",
        "config",
        "stats",
        "free",
        "queue",
        "waiting",
        "limit",
        "max_wait_s",
        "median_s",
        "sigma",
        "per_byte_s",
        "constant",
        "faults",
        "slow_rate",
        "slow_s",
        "windows",
        "stalls",
        "model_error",
        "name_header",
        "llm",
        "component",
        "scaling",
    )

    def __init__(self, endpoint: str, config: Variant, stats, component: bool = False) -> None:
        self.endpoint = endpoint
        self.name = config.name
        self.component = component  # an inference component (copies = instances), not a production variant
        self.llm = None  # an LLM variant's front end to its batching engine (llm_server.LLMTarget)
        self.scaling = None  # emulated autoscaling (autoscaling.EmulatedScaling): instances change over time
        self.config = config
        self.stats = stats
        self.free = config.slots
        self.queue: deque = deque()  # of server.Job
        self.waiting = 0  # live entries in ``queue`` (expired ones are skipped when popped)
        self.limit = config.queue_limit
        self.max_wait_s = config.queue.max_wait_ms / 1000.0
        latency = config.latency
        self.median_s = latency.median_ms / 1000.0
        self.sigma = latency.sigma
        self.constant = self.sigma == 0.0
        self.per_byte_s = latency.per_kib_ms / 1000.0 / 1024.0
        faults = config.faults
        self.model_error = ErrorSpec(errors.MODEL_ERROR, faults.model_error_status)
        # One uniform draw per request picks at most one fault: cumulative thresholds.
        cumulative, table = 0.0, []
        for spec, rate in list(faults.rates.items()) + [(DROP, faults.drop_rate)]:
            if rate > 0:
                cumulative += rate
                table.append(
                    (cumulative, self.model_error if spec == ErrorSpec(errors.MODEL_ERROR) else spec)
                )
        self.faults = tuple(table)
        self.slow_rate = faults.slow.rate
        self.slow_s = faults.slow.extra_ms / 1000.0
        self.windows = tuple(
            (w.from_s, w.to_s, self.model_error if w.error == ErrorSpec(errors.MODEL_ERROR) else w.error)
            for w in faults.windows
        )
        self.stalls = tuple((stall.from_s, stall.to_s) for stall in faults.stalls)
        # an inference component's answers name no production variant
        self.name_header = (
            b"" if component else b"x-Amzn-Invoked-Production-Variant: " + self.name.encode() + b"\r\n"
        )

    def service_time(self, body_bytes: int) -> float:
        """Seconds a request occupies its slot: the latency model plus the per-KiB part and slow faults."""
        seconds = (
            self.median_s if self.constant else self.median_s * math.exp(self.sigma * random.gauss(0.0, 1.0))
        )
        if self.per_byte_s:
            seconds += self.per_byte_s * body_bytes
        if self.slow_rate and random.random() < self.slow_rate:
            seconds += self.slow_s
        return seconds

    def finish(self, start_s: float, service_s: float) -> float:
        """When a request that takes a slot at ``start_s`` (seconds since the reset) for ``service_s``
        of work is done: its work pauses during every stall it meets."""
        end = start_s + service_s
        for begin, stop in self.stalls:
            if end <= begin:
                break
            if start_s < stop:  # the stall overlaps the service (or the request starts inside it)
                paused = stop - max(start_s, begin)
                start_s = max(start_s, stop) if start_s >= begin else start_s
                end += paused
        return end

    def fault(self, since_reset_s: float) -> ErrorSpec | None:
        """The fault this request meets, if any: a scheduled window first, then the per-request rates."""
        for start, end, spec in self.windows:
            if start <= since_reset_s < end:
                return spec
        if self.faults:
            draw = random.random()
            for threshold, spec in self.faults:
                if draw < threshold:
                    return spec
        return None


class EndpointRuntime:
    """An endpoint's variants and its traffic split: by weight, unless the request names one."""

    __slots__ = ("name", "variants", "by_name", "cumulative", "total", "components")

    def __init__(
        self, name: str, variants: list[VariantRuntime], components: list[VariantRuntime] = ()
    ) -> None:
        self.name = name
        self.variants = variants
        self.components = {
            c.name: c for c in components
        }  # by the X-Amzn-SageMaker-Inference-Component header
        self.by_name = {v.name: v for v in variants}
        self.cumulative, self.total = [], 0.0
        for variant in variants:
            self.total += variant.config.weight
            self.cumulative.append(self.total)

    def pick(self) -> VariantRuntime:
        if len(self.variants) == 1:
            return self.variants[0]
        index = bisect_right(self.cumulative, random.random() * self.total)
        return self.variants[min(index, len(self.variants) - 1)]
