"""What an open-loop test offered and what went out, for the summary, report.json and the checks:
the target rate over the test (the offers the TestRun sent), the arrivals the workers scheduled,
how many were dropped (no idle executor under ``--max-in-flight``), the schedule lag, and whether
the load generator itself fell behind."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smload.measure.histogram import Histogram
from smload.record import ARRIVALS, DROPPED, SCHEDULE_LAG, SERVICE
from smload.results.reports import percentiles

BEHIND_LAG_MS = 5.0  # a p99 schedule lag above this: the generator's own delay is in the latencies
BEHIND_SHORTFALL = 0.01  # arrivals this far (and 3 sigma) below the target: the generator could not keep up


@dataclass
class Figures:
    target_rate: float  # mean over the test (req/s)
    achieved_rate: float  # arrivals that started a request, per second
    arrivals: int  # scheduled: sent + dropped
    dropped: int
    seconds: float
    expected: float  # arrivals the target asked for
    process: str
    max_in_flight: int | None
    lag: Histogram = field(default_factory=Histogram)  # ms, every request of an arrival
    service: Histogram = field(default_factory=Histogram)  # ms, from the actual send
    abandoned: int | None = None  # in flight at a stop without draining (the measurements', when kept)

    @property
    def sent(self) -> int:
        return self.arrivals - self.dropped

    def short(self) -> str | None:
        """The generator scheduled fewer arrivals than the target asked for (beyond Poisson noise)."""
        if self.expected > 0:
            missing = self.expected - self.arrivals
            if missing > 3 * math.sqrt(self.expected) + BEHIND_SHORTFALL * self.expected:
                return f"it scheduled {self.arrivals:,} of the {self.expected:,.0f} arrivals asked for"
        return None

    def late(self) -> str | None:
        """The generator's own delay is a visible part of the latencies."""
        if self.lag.count and self.lag.quantile(0.99) > BEHIND_LAG_MS:
            return f"schedule lag p99 {self.lag.quantile(0.99):.1f} ms > {BEHIND_LAG_MS:g} ms"
        return None

    def behind(self) -> str | None:
        """Why the generator fell behind, if it did."""
        return "; ".join(filter(None, (self.short(), self.late()))) or None

    def as_dict(self) -> dict:
        return {
            "target_rate": round(self.target_rate, 3),
            "achieved_rate": round(self.achieved_rate, 3),
            "arrivals": self.arrivals,
            "sent": self.sent,
            "dropped": self.dropped,
            "abandoned": self.abandoned,
            "seconds": round(self.seconds, 3),
            "process": self.process,
            "max_in_flight": self.max_in_flight,
            "schedule_lag_ms": percentiles(self.lag),
            "service_ms": percentiles(self.service),
            "behind": self.behind(),
        }


def figures(run: Any) -> Figures | None:
    """The current (or last) test's open-loop figures; None for a closed-loop test."""
    offered = run.offered()
    if offered is None:
        return None
    expected, seconds = offered
    counts = run.measurements.test_arrivals()
    lag, service = Histogram(), Histogram()
    for series in run.measurements.test().values():
        if SCHEDULE_LAG in series.timings:
            lag.merge(series.timings[SCHEDULE_LAG])
        if SERVICE in series.timings:
            service.merge(series.timings[SERVICE])
    arrivals, dropped = counts.get(ARRIVALS, 0), counts.get(DROPPED, 0)
    settings = run.open_loop
    return Figures(
        target_rate=expected / seconds if seconds else 0.0,
        achieved_rate=(arrivals - dropped) / seconds if seconds else 0.0,
        arrivals=arrivals,
        dropped=dropped,
        seconds=seconds,
        expected=expected,
        process=settings.process.text if settings else "",
        max_in_flight=settings.max_in_flight if settings else None,
        lag=lag,
        service=service,
        abandoned=getattr(run.measurements, "abandoned", None),
    )


def summary_lines(f: Figures) -> list[str]:
    lines = [
        f"open loop ({f.process}): target {f.target_rate:.1f} req/s, achieved {f.achieved_rate:.1f} req/s "
        f"over {f.seconds:.1f} s; arrivals {f.arrivals:,}, sent {f.sent:,}, dropped {f.dropped:,}"
        + (
            f" ({f.dropped / f.arrivals:.2%}: all {f.max_in_flight} executors busy, --max-in-flight)"
            if f.dropped and f.arrivals
            else ""
        )
    ]
    if f.lag.count:
        lines.append(
            f"schedule lag: p50 {f.lag.quantile(0.5):.2f} ms, p99 {f.lag.quantile(0.99):.2f} ms, "
            f"max {f.lag.max:.1f} ms; latencies run from the intended start (service time p50 "
            f"{f.service.quantile(0.5):.1f} ms, p99 {f.service.quantile(0.99):.1f} ms)"
        )
    if f.short():
        lines.append(
            f"open loop: WARNING the load generator fell behind ({f.short()}): the endpoint did not get "
            "the load asked for; add workers or lower the rate"
        )
    if f.late():
        lines.append(
            f"open loop: WARNING the load generator was late ({f.late()}): its own delay is in the "
            "latencies (they run from the intended start); add workers or give them more CPU"
        )
    return lines
