"""The one worker-report codec: what a worker adds to Locust's report to the master (~every 3 s,
``report_to_master``) under :data:`FIELD`, msgpack-friendly lists: every request identity's series
delta since the last report, the worker's generator-health totals and the requests it abandoned."""

from __future__ import annotations

from typing import Any, NamedTuple

from smload.record import Identity

from .series import Series

FIELD = "smload"


class Report(NamedTuple):
    series: dict[Identity, Series]
    health: (
        list[float] | None
    )  # [cpu seconds, loop lag seconds, probes, stalled seconds] (smload.measure.health)
    abandoned: int  # requests cut off by a drain since the last report (smload.measure.drain)
    arrivals: dict[str, int]  # open loop: smload.record.ARRIVALS and DROPPED since the last report


def encode(
    series: dict[Identity, Series],
    health: list[float] | None,
    abandoned: int = 0,
    arrivals: dict[str, int] | None = None,
) -> list:
    return [
        [[*key, s.to_wire()] for key, s in series.items()],
        health,
        abandoned,
        list((arrivals or {}).items()),
    ]


def decode(payload: Any) -> Report:
    entries, health, abandoned, arrivals = payload
    return Report(
        {
            Identity(api, name, endpoint, target): Series.from_wire(wire)
            for api, name, endpoint, target, wire in entries
        },
        health,
        abandoned,
        dict(arrivals),
    )
