"""Arrival processes: the gaps between an open-loop stream's intended starts, seedable.

* ``poisson``: exponential gaps (coefficient of variation 1): independent users, what production
  traffic of many clients looks like, and what queueing theory's M/·/· formulas assume.
* ``constant``: every gap ``1 / rate`` (CV 0): the most even load, a lower bound on queueing.
* ``gamma:<cv>``: gamma-distributed gaps with the given CV: ``cv > 1`` burstier than Poisson,
  ``cv < 1`` smoother. Shape ``k = 1 / cv²``, mean gap ``1 / rate``.

A process draws a gap for a given rate, so the rate may change between two arrivals (a profile):
for Poisson that is exact (memoryless); for the others the next gap follows the new rate. Pure
code: no Locust, no gevent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

POISSON = "poisson"
CONSTANT = "constant"
GAMMA = "gamma"
EXAMPLES = "poisson, constant or gamma:<cv> (e.g. gamma:2 for bursts)"


@dataclass(frozen=True)
class Process:
    kind: str  # POISSON, CONSTANT or GAMMA
    cv: float = 1.0  # the coefficient of variation of the gaps (gamma only; poisson 1, constant 0)

    @property
    def text(self) -> str:
        return f"{GAMMA}:{self.cv:g}" if self.kind == GAMMA else self.kind

    def gaps(self, seed: int | str | None) -> Gaps:
        return Gaps(self, random.Random(seed))


def parse(text: str) -> Process:
    """``poisson`` | ``constant`` | ``gamma:<cv>``; ValueError saying what is accepted."""
    value = str(text).strip().lower()
    if value in (POISSON, CONSTANT):
        return Process(value, 1.0 if value == POISSON else 0.0)
    kind, _, cv = value.partition(":")
    if kind == GAMMA:
        try:
            parsed = float(cv)
        except ValueError:
            raise ValueError(f"{text!r}: give the coefficient of variation, e.g. gamma:2") from None
        if not 0.05 <= parsed <= 20:
            raise ValueError(f"{text!r}: the coefficient of variation must be between 0.05 and 20")
        return Process(GAMMA, parsed)
    raise ValueError(f"{text!r} is not an arrival process: use {EXAMPLES}")


class Gaps:
    """Draws the next gap (seconds) at a rate (per second), from the process's own random stream."""

    __slots__ = ("process", "rng", "_shape")

    def __init__(self, process: Process, rng: random.Random):
        self.process = process
        self.rng = rng
        self._shape = 1.0 / (process.cv * process.cv) if process.kind == GAMMA else 0.0

    def next(self, rate: float) -> float:
        kind = self.process.kind
        if kind == POISSON:
            return self.rng.expovariate(rate)
        if kind == CONSTANT:
            return 1.0 / rate
        return self.rng.gammavariate(self._shape, 1.0 / (rate * self._shape))
