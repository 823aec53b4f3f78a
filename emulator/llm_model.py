"""Continuous batching: the capacity model of an LLM variant or inference component.

Each instance (or copy) runs *steps*. In a step every sequence in its batch produces one token; a
step lasts ``base_ms + per_seq_ms x batch`` plus ``prefill_ms_per_token x`` the prompt tokens of the
sequences admitted at its start (their prefill delays the whole batch's step, as in engines that
mix prefill into decode steps; their first token comes at the end of that step). Between steps the
instance admits waiting requests, oldest first, while it has fewer than ``max_batch`` sequences
and its KV-cache budget holds the request's prompt + max_tokens (reserved until it finishes). A
request that does not fit waits in the variant's FIFO queue, shared by its instances (the head
waits for room: no overtaking), bounded by the classic queue settings (``max_depth``,
``max_wait_ms``). An idle instance starts a step the moment a request arrives.

Time is nominal, as in the classic model: a step ends ``duration`` after the previous one ended,
whenever the event loop gets round to it, so timer jitter never accumulates and a long run
produces exactly the tokens per second of docs/emulator-llm.md. A step processed late is followed
at once by the next one if that one is due too (up to ``CATCH_UP_STEPS`` in a row, then the event
loop serves I/O). Only when the emulator itself cannot keep up (behind by more than ``MAX_LAG_S``:
an overloaded core) does its clock slip, instead of bursting out the backlog.

This module knows nothing of HTTP: the front end (llm_server) gets each step's batch through
``deliver`` and says which sequences it aborted (their client went away).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable

from .llm_config import LLM

_monotonic = time.monotonic
CATCH_UP_STEPS = 8  # steps run back to back when behind, before the event loop gets a turn
MAX_LAG_S = 0.25  # behind by more than this, nominal time restarts from now (docs/emulator-llm.md)


class Seq:
    """One request in the engine. The front end subclasses it with what it needs to answer."""

    __slots__ = (
        "input_tokens",
        "max_tokens",
        "n",
        "reserve",
        "emitted",
        "arrived",
        "admitted",
        "aborted",
        "expired",
        "timer",
        "instance",
    )

    def __init__(self, input_tokens: int, max_tokens: int, n: int, arrived: float) -> None:
        self.input_tokens = input_tokens
        self.max_tokens = max_tokens
        self.n = n  # tokens it will generate (<= max_tokens)
        self.reserve = input_tokens + max_tokens  # KV-cache tokens it holds from admission to its end
        self.emitted = 0
        self.arrived = arrived  # monotonic: the whole request was received
        self.admitted = 0.0  # nominal: the start of the step that prefills it
        self.aborted = False
        self.expired = False
        self.timer = None
        self.instance: Instance | None = None


class Instance:
    __slots__ = ("index", "running", "kv_used", "step_start", "step_end", "busy", "delivered_at")

    def __init__(self, index: int) -> None:
        self.index = index
        self.running: list[Seq] = []
        self.kv_used = 0
        self.step_start = 0.0
        self.step_end = 0.0
        self.busy = False
        self.delivered_at = 0.0  # monotonic: when the previous step's tokens were handed out


class EngineStats:
    """What the engine knows best, since the last reset: busy time, batch and KV occupancy over it,
    and queue waits (the front end records the per-token and per-request times)."""

    __slots__ = ("busy_s", "batch_s", "kv_s", "batch_max", "kv_max", "steps")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.busy_s = 0.0
        self.batch_s = 0.0  # integral of the batch size over busy time
        self.kv_s = 0.0  # integral of the KV tokens reserved over busy time
        self.batch_max = 0
        self.kv_max = 0
        self.steps = 0


class Engine:
    """The instances of one variant (or copies of one component) and their shared queue.

    ``deliver(instance, now, hold)`` is called at the end of every step with the instance's batch,
    each sequence's ``emitted`` already counting this step's token (``hold``: the next step is due
    already, keep non-final tokens for one write; ``flush(instance)`` writes what was kept);
    ``on_admit(seq, start)`` when a request joins a batch; ``expired(seq)`` when a queued request
    waited ``max_wait_s``; ``at(due, callback, arg)`` and ``call_later(delay, callback, arg)``
    schedule on the event loop."""

    def __init__(
        self,
        llm: LLM,
        instances: int,
        queue_limit: int,
        max_wait_s: float,
        deliver: Callable[[Instance, float, bool], None],
        flush: Callable[[Instance], None],
        expired: Callable[[Seq], None],
        at: Callable,
        call_later: Callable,
        on_admit: Callable[[Seq, float], None],
    ) -> None:
        self.llm = llm
        self.max_batch = llm.max_batch
        self.kv_budget = llm.kv_cache_tokens
        self.base_s = llm.decode.base_ms / 1000.0
        self.per_seq_s = llm.decode.per_seq_ms / 1000.0
        self.prefill_s = llm.prefill_ms_per_token / 1000.0
        self.instances = [Instance(i) for i in range(instances)]
        self.idle: list[Instance] = list(reversed(self.instances))  # pop() takes the first instance
        self.queue: deque[Seq] = deque()
        self.waiting = 0  # live entries of ``queue`` (expired ones are dropped when reached)
        self.queue_limit = queue_limit
        self.max_wait_s = max_wait_s
        self.deliver = deliver
        self.flush = flush
        self.min_step_s = self.base_s + self.per_seq_s  # no step with a sequence is shorter
        self.expired = expired
        self.at = at
        self.call_later = call_later
        self.on_admit = on_admit
        self.stats = EngineStats()
        eos = llm.eos_probability
        self._log_keep = math.log1p(-eos) if 0.0 < eos < 1.0 else None
        out = llm.output_tokens
        self._length_mode = out.mode
        self._fixed = out.fixed
        self._median = out.median
        self._sigma = math.log(out.p99 / out.median) / 2.3263478740408408 if out.mode == "lognormal" else 0.0

    # --- lengths
    def output_length(self, max_tokens: int) -> int:
        """How many tokens a request generates: its max_tokens, or fewer by the configured
        distribution, or fewer when it meets an end token first."""
        n = max_tokens
        mode = self._length_mode
        if mode == "fixed":
            n = min(n, self._fixed)
        elif mode == "lognormal":
            n = min(n, max(1, round(self._median * math.exp(self._sigma * random.gauss(0.0, 1.0)))))
        if self._log_keep is not None:
            # the first token that is an end token: geometric, at least 1
            n = min(n, 1 + int(math.log(1.0 - random.random()) / self._log_keep))
        elif self.llm.eos_probability >= 1.0:
            n = 1
        return n

    # --- arrivals
    def submit(self, seq: Seq) -> bool:
        """Start ``seq`` now on an idle instance, or queue it; False when the queue is full."""
        if not self.waiting and self.idle:
            instance = self.idle.pop()
            now = _monotonic()
            instance.busy = True
            instance.delivered_at = now
            self._admit_one(instance, seq, now)
            self._start_step(instance, now, seq.input_tokens)
            return True
        if self.waiting >= self.queue_limit:
            return False
        self.waiting += 1
        self.queue.append(seq)
        seq.timer = self.call_later(self.max_wait_s, self._expire, seq)
        return True

    def _expire(self, seq: Seq) -> None:
        seq.expired = True
        self.waiting -= 1
        self.expired(seq)

    def _admit_one(self, instance: Instance, seq: Seq, start: float) -> None:
        seq.instance = instance
        seq.admitted = start
        instance.running.append(seq)
        instance.kv_used += seq.reserve
        self.on_admit(seq, start)

    def _admit(self, instance: Instance, start: float) -> int:
        """Admit waiting requests (oldest first) while the batch and the KV budget have room; the
        prompt tokens to prefill."""
        queue = self.queue
        running = instance.running
        prefill = 0
        while queue and len(running) < self.max_batch:
            seq = queue[0]
            if seq.expired:
                queue.popleft()
                continue
            if instance.kv_used + seq.reserve > self.kv_budget:
                break  # the head waits for room: no overtaking
            queue.popleft()
            self.waiting -= 1
            seq.timer.cancel()
            self._admit_one(instance, seq, start)
            prefill += seq.input_tokens
        return prefill

    # --- steps
    def _begin(self, instance: Instance, start: float, prefill: int) -> None:
        """Open a step of the instance's batch at nominal ``start``; ``prefill``: prompt tokens it admits."""
        batch = len(instance.running)
        kv = instance.kv_used
        duration = self.base_s + self.per_seq_s * batch + self.prefill_s * prefill
        instance.step_start = start
        instance.step_end = start + duration
        stats = self.stats
        stats.busy_s += duration
        stats.batch_s += batch * duration
        stats.kv_s += kv * duration
        stats.steps += 1
        if batch > stats.batch_max:
            stats.batch_max = batch
        if kv > stats.kv_max:
            stats.kv_max = kv

    def _start_step(self, instance: Instance, start: float, prefill: int) -> None:
        self._begin(instance, start, prefill)
        self.at(instance.step_end, self._step_done, instance)

    def _step_done(self, instance: Instance) -> None:
        steps = 0
        while True:
            end = instance.step_end
            running = instance.running
            for seq in running:
                seq.emitted += 1
            now = _monotonic()
            # Behind, the next step is due already: its tokens join this step's in one write per
            # stream (the front end holds them until ``flush``), which is what lets an overloaded
            # core catch up instead of spending itself on one syscall per token.
            hold = steps + 1 < CATCH_UP_STEPS and end + self.min_step_s <= now
            self.deliver(instance, now, hold)
            instance.delivered_at = now
            for seq in running:
                if seq.emitted >= seq.n or seq.aborted:
                    kept = [seq for seq in running if seq.emitted < seq.n and not seq.aborted]
                    for gone in running:
                        if gone.emitted >= gone.n or gone.aborted:
                            instance.kv_used -= gone.reserve
                    instance.running = running = kept
                    break
            prefill = self._admit(instance, end) if self.waiting else 0
            if not running:  # everyone finished (and wrote what was held)
                instance.busy = False
                self.idle.append(instance)
                return
            late = now - end
            if late > MAX_LAG_S:  # the emulator itself is overloaded: let its time slip rather than burst
                end = now
            self._begin(instance, end, prefill)
            steps += 1
            if instance.step_end > _monotonic() or steps >= CATCH_UP_STEPS:
                # not due yet, or behind for a while: let the loop serve I/O (and other instances) first
                if hold:
                    self.flush(instance)
                self.at(instance.step_end, self._step_done, instance)
                return
            # behind (a busy loop): the next step is due already, run it now

    # --- gauges
    def batch_now(self) -> int:
        return sum(len(i.running) for i in self.instances)

    def kv_now(self) -> int:
        return sum(i.kv_used for i in self.instances)
