"""What ``verify`` saw, put in the simulation's terms so that the two can be compared and ranked
alike: scaling activities from ``DescribeEndpoint`` polls, per-minute rows (the emulator's
10-second windows, or CloudWatch's minutes), instance-hours, the scale-out lag, and each change of
the instance count next to the simulated one.

Times are policy seconds since the profile started. Pure code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from smload.results.checks import OPERATORS, Check


def events_from_polls(polls: list[tuple[float, int, int]]) -> list[dict]:
    """Activities from (time, CurrentInstanceCount, DesiredInstanceCount) polls: one begins when the
    desired count changes (decided by then), and is complete at the first poll whose current count
    reaches it (in service, or drained)."""
    events: list[dict] = []
    previous = None
    for t, current, desired in polls:
        if previous is not None and desired != previous[2]:
            events.append(
                {"time": t, "from": previous[2], "to": desired, "ready": None, "decided_after": previous[0]}
            )
        for event in events:
            if event["ready"] is None and current == event["to"] and t >= event["time"]:
                event["ready"] = t
        previous = (t, current, desired)
    return events


def instance_hours(polls: list[tuple[float, int, int]], end: float) -> float:
    """Instance-hours of policy time, billing instances from launch (current, plus those starting)."""
    total = 0.0
    for (t, current, desired), nxt in zip(polls, polls[1:] + [(end, 0, 0)], strict=True):
        total += max(current, desired) * max(0.0, min(nxt[0], end) - t)
    return total / 3600.0


def minutes_from_windows(timeline: dict, offset: float, duration: float) -> list[dict]:
    """The emulator's 10-second windows (``GET /_emulator/autoscaling``) as minutes of the profile:
    requests, errors, the worst window's p50/p99 (a minute's percentile is at most its worst
    window's), instances at the minute's end."""
    minutes: dict[int, dict] = {}
    for i, end in enumerate(timeline.get("t", [])):
        t = end - 10 - offset
        if t < -1e-6 or t >= duration:
            continue
        m = minutes.setdefault(
            int(t // 60),
            {
                "t": float(int(t // 60) * 60),
                "requests": 0,
                "errors": 0,
                "p50_ms": None,
                "p99_ms": None,
                "instances": 0,
            },
        )
        m["requests"] += timeline["arrivals"][i]
        m["errors"] += timeline["errors"][i]
        m["instances"] = timeline["instances"][i]
        for key in ("p50_ms", "p99_ms"):
            value = timeline[key][i]
            if value is not None and (m[key] is None or value > m[key]):
                m[key] = value
    return [minutes[k] for k in sorted(minutes)]


def judge(minutes: list[dict], slo: tuple[Check, ...], max_error_rate: float) -> None:
    """Mark each minute ``slo_ok`` as the simulation does: its error rate and its latency percentiles."""
    for m in minutes:
        broken = []
        if m["requests"] and m["errors"] / m["requests"] > max_error_rate:
            broken.append("errors")
        for check in slo:
            key = f"{check.metric}_ms"
            if m.get(key) is not None and not OPERATORS[check.op](m[key], check.threshold):
                broken.append(check.metric)
        m["slo_ok"] = not broken


def summary(
    minutes: list[dict],
    events: list[dict],
    hours: float,
    price: float | None,
    errors: int | None = None,
    requests: int | None = None,
) -> dict:
    """The simulation's summary keys, from what was observed (``errors``/``requests``: the exact
    counts where known, else the minutes' sums)."""
    requests = requests if requests is not None else sum(m["requests"] for m in minutes)
    errors = errors if errors is not None else sum(m["errors"] for m in minutes)
    peak = max((m["p99_ms"] for m in minutes if m.get("p99_ms") is not None), default=None)
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 6) if requests else 0.0,
        "slo_violating_minutes": sum(1 for m in minutes if not m.get("slo_ok", True)),
        "minutes": len(minutes),
        "peak_p99_ms": peak,
        "instance_hours": round(hours, 4),
        "cost": round(hours * price, 4) if price is not None else None,
        "max_instances": max([e["to"] for e in events] + [m["instances"] for m in minutes] or [0]),
        "scale_outs": sum(1 for e in events if e["to"] > e["from"]),
        "scale_ins": sum(1 for e in events if e["to"] < e["from"]),
    }


def onset(
    rate: Callable[[float], float | None],
    capacity_rps: float,
    instances: int,
    after: float,
    before: float,
    step: float = 1.0,
) -> float | None:
    """The first policy second in [after, before) when the offered rate exceeded what ``instances``
    serve (the need a scale-out answers), if any."""
    t = after
    while t < before:
        r = rate(t)
        if r is not None and r > capacity_rps * instances:
            return t
        t += step
    return None


def lags(events: list[dict], rate: Callable[[float], float | None], capacity_rps: float) -> list[dict]:
    """Per scale-out: from the moment the load outgrew the instances in service to the new instances
    in service (``lag_s``), and to the decision (``detect_s``)."""
    out, since = [], 0.0
    for e in events:
        if e["to"] > e["from"]:
            start = onset(rate, capacity_rps, e["from"], since, e["time"])
            out.append(
                {
                    "time": e["time"],
                    "from": e["from"],
                    "to": e["to"],
                    "onset": start,
                    "detect_s": None if start is None else round(e["time"] - start, 3),
                    "lag_s": None if start is None or e["ready"] is None else round(e["ready"] - start, 3),
                }
            )
        since = e["ready"] if e["ready"] is not None else e["time"]
    return out


def compare(observed: list[dict], simulated: list[dict], period_s: float) -> list[dict]:
    """Each change of the instance count, observed next to simulated (paired in order), and whether
    they agree within one metric period."""
    rows = []
    for i in range(max(len(observed), len(simulated))):
        o = observed[i] if i < len(observed) else None
        s = simulated[i] if i < len(simulated) else None
        row = {
            "change": i + 1,
            "observed": None if o is None else {k: o[k] for k in ("time", "from", "to", "ready")},
            "simulated": None if s is None else {k: s[k] for k in ("time", "from", "to", "ready")},
        }
        if o is not None and s is not None:
            row["decision_difference_s"] = round(o["time"] - s["time"], 3)
            row["ready_difference_s"] = (
                None if o["ready"] is None or s["ready"] is None else round(o["ready"] - s["ready"], 3)
            )
            row["within_period"] = (
                (o["from"], o["to"]) == (s["from"], s["to"])
                and abs(row["decision_difference_s"]) <= period_s
                and (row["ready_difference_s"] is None or abs(row["ready_difference_s"]) <= period_s)
            )
        else:
            row["within_period"] = False
        rows.append(row)
    return rows


def within(value: float, reference: float, rel: float) -> bool:
    if reference == 0:
        return value == 0
    return math.isfinite(value) and abs(value - reference) <= rel * abs(reference)
