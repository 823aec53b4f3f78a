"""What an autoscaling policy would do to an endpoint under a traffic profile: a discrete-event
simulation in one-second steps of the endpoint (its measured capacity per instance, its queue) and
of Application Auto Scaling (:mod:`smload.scaling`, the same model the emulator runs).

The endpoint (per second ``t``, ``n`` instances in service, arrival rate ``lambda``):

* capacity ``mu x n`` requests per second, ``mu`` the calibrated maximum per instance;
* a FIFO backlog ``q`` (fluid): arrivals beyond capacity wait; past ``queue_per_instance x n``
  waiting requests they are refused (the model server's full queue, ``ModelError(503)``), and a
  request that would wait longer than ``timeout_s`` (SageMaker's 60 s) fails too;
* below capacity, random arrivals still queue now and then for a slot: an M/G/c wait (Erlang C with
  Allen-Cunneen's correction ``(Ca^2 + Cs^2) / 2``; constant arrivals have ``Ca = 0``) over the
  ``slots_per_instance x n`` slots, each serving ``1 / mean service time``;
* a request's latency is its wait (the backlog ahead of it, then the slot wait) plus a service
  time drawn from the calibration's lowest-load step (its percentiles, a lognormal tail past p99).

Application Auto Scaling sees, every 10 s, the invocations (each counting 1 / instances in
service, as ``InvocationsPerInstance``) and the mean requests in flight per instance, queued ones
included (``ConcurrentRequestsPerModel``); new instances serve ``startup_s`` after the decision.

Blind spots (docs/autoscaling.md): the queue is fluid (no burst of a Poisson second beyond its
mean), the service time does not change with load (no CPU contention beyond what the calibration
measured), scale-in drains at once, and the load generator never drops arrivals.

Pure code: no Locust, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from smload import scaling
from smload.results.checks import Check

STEP_S = 1.0
LOGNORMAL_Z99 = 2.3263478740408408
SERVICE_POINTS = tuple(
    (i + 0.5) / 40 for i in range(40)
)  # the service time's quantiles a wait is convolved with
ARRIVALS = {"poisson": 1.0, "constant": 0.0}  # squared coefficient of variation of inter-arrival times


@dataclass(frozen=True)
class Service:
    """The service time (ms) at low load, from its percentiles; lognormal past the last one."""

    points: tuple[tuple[float, float], ...]  # (quantile, ms), increasing
    mean_ms: float

    @property
    def sigma(self) -> float:
        """The lognormal's sigma through p50 and p99 (or the first and last percentiles given)."""
        known = dict(self.points)
        p50 = known.get(0.5, self.points[0][1])
        p99 = known.get(0.99, self.points[-1][1])
        return math.log(p99 / p50) / LOGNORMAL_Z99 if p50 > 0 and p99 > p50 else 0.0

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (lognormal through p50 and p99)."""
        return math.exp(self.sigma**2) - 1.0

    def quantile(self, p: float) -> float:
        pts = self.points
        if p <= pts[0][0]:  # below the first percentile: the lognormal through p50 and p99
            return pts[0][1] * math.exp(self.sigma * (_z(p) - _z(pts[0][0])))
        for (p0, v0), (p1, v1) in zip(pts, pts[1:], strict=False):
            if p <= p1:
                return v0 + (v1 - v0) * (p - p0) / (p1 - p0)
        p_last, v_last = pts[-1]
        median = next((v for q, v in pts if q == 0.5), v_last)
        sigma = math.log(v_last / median) / _z(p_last) if v_last > median > 0 else 0.0
        return median * math.exp(sigma * _z(min(p, 0.999999)))


def _z(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation is overkill: bisection on erf)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Capacity:
    """One scalable target (a variant) as calibration measured it, per instance."""

    variant: str
    rps_per_instance: float
    slots_per_instance: float
    service: Service
    queue_per_instance: int = 100
    timeout_s: float = 60.0

    def describe(self) -> str:
        return (
            f"{self.rps_per_instance:g} req/s per instance, {self.slots_per_instance:g} in flight at the knee, "
            f"service p50 {self.service.quantile(0.5):.1f} ms p99 {self.service.quantile(0.99):.1f} ms, "
            f"queue {self.queue_per_instance} per instance, timeout {self.timeout_s:g} s"
        )


# ---------------------------------------------------------------------------------------------
# Latency of a group of requests: a backlog wait, then maybe a slot wait, then the service time


@dataclass
class _Latency:
    """Requests of one second: their backlog wait ``w`` (ms), the probability ``c`` of a slot wait
    and its mean ``m`` (ms, exponential)."""

    weight: float
    w: float
    c: float
    m: float


def _cdf(group: _Latency, x: float, service: Service, points: list[float]) -> float:
    y = x - group.w
    if y <= 0:
        return 0.0
    no_wait = _service_cdf(y, points)
    if group.c <= 0 or group.m <= 0:
        return no_wait
    waited = sum(1.0 - math.exp(-(y - s) / group.m) for s in points if s < y) / len(points)
    return (1.0 - group.c) * no_wait + group.c * waited


def _service_cdf(y: float, points: list[float]) -> float:
    below = sum(1 for s in points if s <= y)
    return below / len(points)


def quantile(groups: list[_Latency], p: float, service: Service, points: list[float]) -> float | None:
    """The ``p`` quantile (ms) of the mixture of groups, by bisection on its CDF."""
    total = sum(g.weight for g in groups)
    if total <= 0:
        return None
    hi = max(g.w + points[-1] + (g.m * 12 if g.c > 0 else 0.0) for g in groups) + 1.0
    lo = 0.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if sum(g.weight * _cdf(g, mid, service, points) for g in groups) / total < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 0.01:
            break
    return round(hi, 2)


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass
class _Accumulator:
    """One row of the timeline (a minute or 10 s), accumulated second by second."""

    start: float
    dt: float = STEP_S  # real seconds per step
    seconds: int = 0
    offered: float = 0.0
    served: float = 0.0
    errors: float = 0.0
    capacity: float = 0.0
    billed: float = 0.0  # instance-seconds
    queue_max: float = 0.0
    concurrency: float = 0.0
    instances: int = 0
    desired: int = 0
    groups: dict = field(default_factory=dict)  # (w, c, m) rounded -> _Latency

    def add(
        self,
        a: float,
        served: float,
        errors: float,
        capacity: float,
        billed: float,
        queue: float,
        concurrency: float,
        instances: int,
        desired: int,
        latency: _Latency,
    ) -> None:
        self.seconds += 1
        self.offered += a
        self.served += served
        self.errors += errors
        self.capacity += capacity
        self.billed += billed
        self.queue_max = max(self.queue_max, queue)
        self.concurrency += concurrency
        self.instances = instances
        self.desired = desired
        if latency.weight > 0:
            key = (round(latency.w, 1), round(latency.c, 3), round(latency.m, 1))
            group = self.groups.get(key)
            if group is None:
                self.groups[key] = _Latency(latency.weight, key[0], key[1], key[2])
            else:
                group.weight += latency.weight

    def row(self, service: Service, points: list[float], percentiles: tuple[float, ...]) -> dict:
        groups = list(self.groups.values())
        seconds = max(1, self.seconds)
        real = seconds * self.dt
        out = {
            "t": self.start,
            "rate": round(self.offered / real, 3),
            "instances": self.instances,
            "desired": self.desired,
            "capacity_rps": round(self.capacity / real, 3),
            "utilisation": round(self.served / self.capacity, 4) if self.capacity else None,
            "queue": round(self.queue_max, 1),
            "concurrency": round(self.concurrency / seconds, 3),
            "requests": round(self.offered, 1),
            "errors": round(self.errors, 1),
            "instance_seconds": round(self.billed, 1),
        }
        for p in percentiles:
            out[f"p{_pname(p)}_ms"] = quantile(groups, p, service, points)
        return out


def _pname(p: float) -> str:
    text = f"{p * 100:.3f}".rstrip("0").rstrip(".")
    return text


@dataclass
class Result:
    """One policy's simulated run."""

    policy: str
    rows: list[dict]  # the timeline at the chosen resolution
    minutes: list[dict]  # per minute (SLO accounting)
    events: list[dict]
    summary: dict


def simulate(
    capacity: Capacity,
    rate: Callable[[float], float | None],
    duration_s: float,
    policies: list[scaling.Policy],
    limits: scaling.Limits,
    instances: int,
    *,
    name: str = "policy",
    resolution_s: int = 60,
    arrivals: str = "poisson",
    slo: tuple[Check, ...] = (),
    max_error_rate: float = 0.01,
    instance_price: float | None = None,
    time_scale: float = 1.0,
) -> Result:
    """Run the profile ``rate(t)`` (requests per second at policy second ``t``; None: the end) for
    ``duration_s`` policy seconds through the endpoint and its policies.

    ``time_scale`` > 1 simulates a compressed run, as the emulator makes one: policy time (the
    profile's clock, periods, alarms, start-up) runs that much faster than the requests, whose
    rates and latencies stay real. Counts (requests, errors) are then those of the compressed run;
    instance-hours stay in policy time (what the policy would cost in production)."""
    scaler = scaling.Scaler(policies, limits, instances)
    service = capacity.service
    points = [service.quantile(p) for p in SERVICE_POINTS]
    mean_s = max(service.mean_ms, 1e-6) / 1000.0
    mu = capacity.rps_per_instance
    ca2 = ARRIVALS[arrivals]
    variability = (ca2 + service.scv) / 2.0
    percentiles = sorted({0.5, 0.9, 0.95, 0.99} | {_percentile(c) for c in slo if _percentile(c) is not None})
    q = 0.0
    pending: list[scaling.Activity] = []
    window = scaling.Window(scaling.WINDOW_S)
    rows: list[dict] = []
    minutes: list[dict] = []
    steps = int(math.ceil(duration_s / STEP_S))
    dt = STEP_S / time_scale  # real seconds per step: the requests' clock
    row = _Accumulator(0.0, dt)
    minute = _Accumulator(0.0, dt)
    for k in range(steps):
        t = k * STEP_S
        for activity in list(pending):  # instances in service from this second on
            ready = scaler.ready_at(activity)
            if ready <= t + 1e-9:
                scaler.complete(activity, ready)
                pending.remove(activity)
        lam = rate(t + STEP_S / 2)
        if lam is None:
            break
        lam = max(0.0, lam)
        n = scaler.in_service
        a = lam * dt
        cap = mu * n * dt
        total = q + a
        served = min(total, cap)
        q = total - served
        refused = max(0.0, q - capacity.queue_per_instance * n)
        q -= refused
        timed_out = max(0.0, q - capacity.timeout_s * mu * n)
        q -= timed_out
        errors = refused + timed_out
        # the wait of this second's arrivals: the backlog ahead of them, then a slot (below capacity)
        backlog_ms = 1000.0 * q / (mu * n) if n else 0.0
        c_wait, mean_wait_s = _slot_wait(
            lam if q <= 0 else 0.0, n * capacity.slots_per_instance, mean_s, variability
        )
        busy = min(lam, mu * n) * mean_s
        in_flight = q + busy + lam * c_wait * mean_wait_s
        latency = _Latency(max(0.0, a - errors), backlog_ms, c_wait, 1000.0 * mean_wait_s)
        starting = scaler.desired - n if scaler.updating and scaler.desired > n else 0
        billed = (n + starting) * STEP_S  # instance-seconds of policy time: what production would pay
        for acc in (row, minute):
            acc.add(a, served, errors, cap, billed, q, in_flight / max(1, n), n, scaler.desired, latency)
        window.invocations += a * time_scale  # a policy period's count at these real rates
        window.per_instance += a * time_scale / max(1, n)
        window.concurrency += in_flight * STEP_S / scaling.WINDOW_S  # in all: per instance at the close
        window.concurrency_max = max(window.concurrency_max, in_flight / max(1, n))
        end = t + STEP_S
        if end + 1e-9 >= window.end:
            window.instances = max(1, scaler.in_service)
            window.concurrency /= window.instances
            for activity in scaler.close(window):
                if activity.out:
                    pending.append(activity)
                else:
                    scaler.complete(activity, activity.time)  # drained at once: requests take ms
            window = scaling.Window(window.end + scaling.WINDOW_S)
        if end + 1e-9 >= row.start + resolution_s:
            rows.append(row.row(service, points, percentiles))
            row = _Accumulator(end, dt)
        if end + 1e-9 >= minute.start + scaling.MINUTE_S:
            minutes.append(minute.row(service, points, percentiles))
            minute = _Accumulator(end, dt)
    for acc, out in ((row, rows), (minute, minutes)):
        if acc.seconds:
            out.append(acc.row(service, points, percentiles))
    for m in minutes:
        m["slo_ok"], m["slo_broken"] = _judge(m, slo, max_error_rate)
    for r in rows:
        r["slo_ok"] = _judge(r, slo, max_error_rate)[0]
    events = [a.as_dict() for a in scaler.activities]
    return Result(name, rows, minutes, events, _summary(rows, minutes, events, instance_price, capacity))


def _slot_wait(lam: float, slots: float, mean_s: float, variability: float) -> tuple[float, float]:
    """P(wait for a slot) and the mean wait (s) given one, for ``lam`` req/s on ``slots`` slots of
    mean service ``mean_s``: Erlang C, the wait scaled by Allen-Cunneen's ``(Ca^2 + Cs^2) / 2``."""
    c = max(1, int(round(slots)))
    offered = lam * mean_s  # Erlangs
    if lam <= 0 or offered >= c:
        return 0.0, 0.0
    # Erlang B by its recurrence, then C
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    rho = offered / c
    erlang_c = b / (1 - rho + rho * b)
    mean_wait = mean_s / (c * (1 - rho)) * variability
    return (erlang_c, mean_wait) if variability > 0 else (0.0, 0.0)


def _percentile(check: Check) -> float | None:
    if check.metric.startswith("p"):
        return float(check.metric[1:]) / 100.0
    return None


def _judge(row: dict, slo: tuple[Check, ...], max_error_rate: float) -> tuple[bool, list[str]]:
    broken = []
    requests = row["requests"]
    if requests > 0 and row["errors"] / requests > max_error_rate:
        broken.append(f"error rate {row['errors'] / requests:.2%} > {max_error_rate:.2%}")
    for check in slo:
        p = _percentile(check)
        if p is None:
            continue
        value = row.get(f"p{_pname(p)}_ms")
        if value is not None and not _passes(value, check):
            broken.append(f"{check.metric} {value:.1f} ms, SLO {check.text}")
    return not broken, broken


def _passes(value: float, check: Check) -> bool:
    from smload.results.checks import OPERATORS

    return OPERATORS[check.op](value, check.threshold)


def _summary(
    rows: list[dict], minutes: list[dict], events: list[dict], price: float | None, capacity: Capacity
) -> dict:
    requests = sum(m["requests"] for m in minutes)
    errors = sum(m["errors"] for m in minutes)
    hours = sum(m["instance_seconds"] for m in minutes) / 3600.0
    short = [m for m in minutes if m["rate"] > m["capacity_rps"] * 1.0001]
    peak = max((m["p99_ms"] for m in minutes if m.get("p99_ms") is not None), default=None)
    return {
        "requests": round(requests),
        "errors": round(errors),
        "error_rate": round(errors / requests, 6) if requests else 0.0,
        "slo_violating_minutes": sum(1 for m in minutes if not m["slo_ok"]),
        "minutes": len(minutes),
        "peak_p99_ms": peak,
        "instance_hours": round(hours, 4),
        "cost": round(hours * price, 4) if price is not None else None,
        "max_instances": max((m["instances"] for m in minutes), default=0),
        "scale_outs": sum(1 for e in events if e["to"] > e["from"]),
        "scale_ins": sum(1 for e in events if e["to"] < e["from"]),
        "under_capacity_minutes": len(short),
        "capacity_per_instance_rps": capacity.rps_per_instance,
    }
