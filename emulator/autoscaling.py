"""Emulated Application Auto Scaling: a variant (or inference component) whose instance count follows
its scaling policies, driven by the live traffic it serves.

Policy time runs ``time_scale`` times faster than the wall clock (periods, alarms, cooldowns and the
instance start-up time), while every request keeps its real latency. The metrics are what
CloudWatch would record at the same real request rates: a compressed minute of ``60 / time_scale``
seconds holds ``1 / time_scale`` of a real minute's requests, so counts are multiplied by
``time_scale`` (``InvocationsPerInstance`` is the request rate x 60 / instances, as on AWS);
concurrency is a level and needs no scaling.

Each 10-second window of policy time closes at its boundary (a timer, or the first request after
it); the window's counts go to :class:`smload.scaling.Scaler`, which returns the activities it
starts. A scale-out adds the new instances' slots when they are in service (``startup_s`` later),
and the queue drains into them at once; a scale-in removes slots at once: requests in flight on the
removed instances finish (the slot deficit is paid back as they complete), and the activity
completes when they have. Everything is counted in policy time since start or the last reset.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from smload import scaling
from smload.measure.histogram import Histogram

if TYPE_CHECKING:
    from .capacity import VariantRuntime

_monotonic = time.monotonic
TIMELINE_WINDOWS = 8640  # 24 hours of policy time in 10-second windows
MAX_EVENTS = 1000


class Window:
    """The running counts of the current window (requests are counted as they arrive and answer)."""

    __slots__ = ("arrivals", "per_instance", "area", "peak", "answered", "errors", "latency")

    def __init__(self) -> None:
        self.arrivals = 0
        self.per_instance = 0.0
        self.area = 0.0  # requests in flight x policy seconds
        self.peak = 0.0
        self.answered = 0
        self.errors = 0
        self.latency = Histogram()  # 200s, ms


class EmulatedScaling:
    """The scaler of one variant or component, its clock, its counters and its effect on the slots."""

    def __init__(self, app, runtime: VariantRuntime, time_scale: float) -> None:
        self.app = app
        self.runtime = runtime
        self.spec = runtime.config.autoscaling
        self.time_scale = time_scale
        self.initial = runtime.config.instances
        self.concurrency = runtime.config.concurrency
        self.fixed_queue = runtime.config.queue.max_depth  # None: 100 per instance in service
        self.generation = 0  # a reset invalidates the timers of the run before it
        self.start(_monotonic())

    def start(self, now: float) -> None:
        self.generation += 1
        self.epoch = now
        self.wall_epoch = time.time() - (_monotonic() - now)  # the same instant on the wall clock
        self.scaler = scaling.Scaler(self.spec.policies, self.spec.limits, self.initial)
        self.window_end = float(scaling.WINDOW_S)
        self.window = Window()
        self.flight_at = 0.0  # policy time of the last in-flight change
        self.timeline: deque[dict] = deque(maxlen=TIMELINE_WINDOWS)
        self.events: deque[scaling.Activity] = deque(maxlen=MAX_EVENTS)
        self.scale_outs = 0
        self.scale_ins = 0
        self.draining: scaling.Activity | None = None
        self.first_arrival: float | None = None  # policy time of the first request since the start or reset
        self._schedule()

    # --- time
    def policy_time(self, now: float) -> float:
        return (now - self.epoch) * self.time_scale

    def real_time(self, policy_s: float) -> float:
        return self.epoch + policy_s / self.time_scale

    def real_wall(self, policy_s: float) -> float:
        """Unix time of a policy time (DescribeEndpoint's timestamps)."""
        return self.wall_epoch + policy_s / self.time_scale

    def last_change(self) -> float:
        """Unix time of the last capacity change (or of the start)."""
        if not self.events:
            return self.wall_epoch
        last = self.events[-1]
        return self.real_wall(last.ready if last.ready is not None else last.time)

    def _schedule(self) -> None:
        generation = self.generation
        delay = max(0.0, self.real_time(self.window_end) - _monotonic())
        self.app.loop.call_later(delay, self._tick, generation)

    def _tick(self, generation: int) -> None:
        if generation != self.generation:
            return
        self.roll(_monotonic())
        self._schedule()

    @property
    def instances(self) -> int:
        return self.scaler.in_service

    @property
    def desired(self) -> int:
        return self.scaler.desired

    # --- counting (called by the server on the request path of this variant only)
    def arrived(self, now: float) -> None:
        """A request reached the model (queued or served): InvocationsPerInstance counts it."""
        t = self.policy_time(now)
        if t >= self.window_end:
            self.roll(now)
        if self.first_arrival is None:
            self.first_arrival = t
        window = self.window
        window.arrivals += 1
        window.per_instance += 1.0 / max(1, self.scaler.in_service)

    def flight(self, now: float, in_flight_before: int) -> None:
        """The number of requests in flight is about to change from ``in_flight_before``."""
        t = self.policy_time(now)
        if t >= self.window_end:
            self.roll(now)
        window = self.window
        window.area += in_flight_before * (t - self.flight_at)
        self.flight_at = t
        per = in_flight_before / max(1, self.scaler.in_service)
        if per > window.peak:
            window.peak = per

    def answered(self, error: str | None, seconds: float, ok: bool) -> None:
        window = self.window
        window.answered += 1
        if error is not None:
            window.errors += 1
        elif ok:
            window.latency.record(seconds * 1000.0)

    # --- windows
    def roll(self, now: float) -> None:
        """Close every window that ended by ``now`` (policy time), in order."""
        t = self.policy_time(now)
        while t >= self.window_end:
            end = self.window_end
            window = self.window
            in_flight = self.runtime.stats.in_flight
            window.area += in_flight * (end - self.flight_at)
            self.flight_at = end
            instances = max(1, self.scaler.in_service)
            scale = self.time_scale
            sample = scaling.Window(
                end,
                window.arrivals * scale,
                window.per_instance * scale,
                window.area / scaling.WINDOW_S / instances,
                max(window.peak, in_flight / instances),
                instances,
            )
            latency = window.latency
            self.timeline.append(
                {
                    "t": end,
                    "instances": self.scaler.in_service,
                    "desired": self.scaler.desired,
                    "arrivals": window.arrivals,
                    "answered": window.answered,
                    "errors": window.errors,
                    "concurrency": round(sample.concurrency, 4),
                    "queue": self.runtime.stats.queued,
                    "p50_ms": round(latency.quantile(0.5), 3) if latency.count else None,
                    "p99_ms": round(latency.quantile(0.99), 3) if latency.count else None,
                }
            )
            self.window = Window()
            self.window_end = end + scaling.WINDOW_S
            for activity in self.scaler.close(sample):
                self._begin(activity, now)

    # --- capacity changes
    def _begin(self, activity: scaling.Activity, now: float) -> None:
        self.events.append(activity)
        if activity.out:
            self.scale_outs += 1
            ready = self.scaler.ready_at(activity)
            generation = self.generation
            self.app.loop.call_later(
                max(0.0, self.real_time(ready) - now), self._ready, activity, ready, generation
            )
            return
        self.scale_ins += 1
        runtime = self.runtime
        runtime.free -= (activity.old - activity.new) * self.concurrency
        self._set_queue_limit()
        if runtime.free >= 0:
            self.scaler.complete(activity, activity.time)
        else:
            self.draining = activity

    def _ready(self, activity: scaling.Activity, ready: float, generation: int) -> None:
        if generation != self.generation:
            return
        self.roll(_monotonic())  # the windows before the instances joined are closed with the old count
        self.scaler.complete(activity, ready)
        self._set_queue_limit()
        release, runtime = self.app.release, self.runtime
        for _ in range((activity.new - activity.old) * self.concurrency):
            release(runtime, _monotonic())  # a queued request takes each new slot at once

    def drained(self, now: float) -> None:
        """The last request of the removed instances finished: the scale-in is complete."""
        activity, self.draining = self.draining, None
        if activity is not None:
            self.scaler.complete(activity, self.policy_time(now))

    def _set_queue_limit(self) -> None:
        if self.fixed_queue is None:
            self.runtime.limit = 100 * max(1, self.scaler.in_service)

    def reset(self, now: float) -> None:
        """``POST /_emulator/reset``: policy time 0, the configured instances, no events. Requests in
        flight keep their slots; the free ones are recounted for the configured instances."""
        runtime = self.runtime
        busy = self.instances * self.concurrency - runtime.free
        self.start(now)
        runtime.free = self.instances * self.concurrency - busy
        self._set_queue_limit()

    # --- views
    def events_json(self) -> list[dict]:
        return [a.as_dict() for a in self.events]

    def to_json(self, now: float) -> dict:
        """``GET /_emulator/autoscaling``: the scaler's state, its events and its per-window timeline."""
        rows = list(self.timeline)
        columns = (
            "t",
            "instances",
            "desired",
            "arrivals",
            "answered",
            "errors",
            "concurrency",
            "queue",
            "p50_ms",
            "p99_ms",
        )
        limits = self.spec.limits
        return {
            "policy_time_s": round(self.policy_time(now), 3),
            "first_arrival_s": None if self.first_arrival is None else round(self.first_arrival, 3),
            "instances": self.instances,
            "desired": self.desired,
            "status": "Updating" if self.scaler.updating else "InService",
            "min_capacity": limits.min_capacity,
            "max_capacity": limits.max_capacity,
            "startup_s": limits.startup_s,
            "policies": [
                {"name": p.name, "describe": p.describe(), "alarms": [a.describe() for a in p.alarms() if a]}
                for p in self.spec.policies
            ],
            "alarms": self.scaler.state()["alarms"],
            "scaling_events": self.events_json(),
            "timeline": {c: [row[c] for row in rows] for c in columns},
        }
