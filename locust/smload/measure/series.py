"""What happened to one request identity: requests, classified failures, response bytes, a
histogram per kind of timing and named counters. Mergeable (a worker's delta into the master's
totals) and msgpack-friendly on the wire (Locust's worker reports)."""

from __future__ import annotations

from smload.record import LATENCY, Identity

from .histogram import Histogram


class Series:
    __slots__ = ("requests", "failures", "response_bytes", "timings", "counts")

    def __init__(self) -> None:
        self.requests = 0  # every request, timed or not (Locust counts a None response time too)
        self.failures: dict[str, int] = {}  # smload.errors type (``ModelError(500)``) -> count
        self.response_bytes = 0
        self.timings: dict[str, Histogram] = {}  # kind (smload.record) -> ms
        self.counts: dict[str, int] = {}

    @property
    def histogram(self) -> Histogram:
        """The headline latency (to the last byte): the live histogram, created when first asked for."""
        return self.timing(LATENCY)

    def timing(self, kind: str) -> Histogram:
        histogram = self.timings.get(kind)
        if histogram is None:
            histogram = self.timings[kind] = Histogram()
        return histogram

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    def merge(self, other: Series) -> Series:
        self.requests += other.requests
        self.response_bytes += other.response_bytes
        for error, n in other.failures.items():
            self.failures[error] = self.failures.get(error, 0) + n
        for kind, histogram in other.timings.items():
            self.timing(kind).merge(histogram)
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n
        return self

    def copy(self) -> Series:
        return Series().merge(self)

    def to_wire(self) -> list:
        return [
            self.requests,
            list(self.failures.items()),
            self.response_bytes,
            [[kind, h.to_wire()] for kind, h in self.timings.items()],
            list(self.counts.items()),
        ]

    @classmethod
    def from_wire(cls, wire: list) -> Series:
        series = cls()
        series.requests, failures, series.response_bytes, timings, counts = wire
        series.failures = dict(failures)
        series.timings = {kind: Histogram.from_wire(h) for kind, h in timings}
        series.counts = dict(counts)
        return series


def merge_into(target: dict[Identity, Series], key: Identity, series: Series) -> None:
    existing = target.get(key)
    if existing is None:
        target[key] = series.copy()
    else:
        existing.merge(series)
