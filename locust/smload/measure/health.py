"""How busy the load generator itself is, measured finely enough for a calibration step of a few
seconds (Locust's own CPU figure is sampled every 5 s), and the rule that says when it is too busy.

Every process that sends requests (a worker, a local runner) keeps two running totals
(:class:`Probe`), which a worker sends with each report (~3 s apart):

* the CPU time it has used (100% = one core: all that a gevent process can use);
* its event loop's lag: how late a 50 ms timer fires. A saturated loop delays every request's
  timing by that much, whatever the cause: its own CPU, or a machine too busy to give it a core.
  That is why the lag is the better signal on a shared machine, where a starved worker may never
  reach 90% CPU.

The master (or the local runner) keeps them per process (:class:`Samples`) and turns them into
figures over a window: the highest CPU and the highest mean lag over one report interval.
Calibration judges each step's window by the busiest process, the end-of-test summary shows every
worker's; :func:`generator_busy` is the rule for both.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import psutil

PROBE_S = 0.05
STALL_S = 1.0  # a probe tick this late: the process stood still
MIN_INTERVAL_S = 0.5  # shorter intervals (an extra report when users stop) are mostly noise
LOCAL = "local"
CPU_LIMIT = 90.0  # % of one core (Locust's own warning threshold)
LAG_FLOOR_MS = 2.0  # loop lag below this is the machine's noise (an idle loop shows ~0.7 ms here)
LAG_SHARE = 0.10  # loop lag above this share of the median latency distorts the measurement


def generator_busy(cpu_percent: float | None, loop_lag_ms: float | None, median_ms: float) -> str | None:
    """Why a load generator process may have shaped the latencies it measured, if it may have:
    above 90% CPU, or its event loop late by more than the machine's noise and a tenth of the
    median latency (that lag is added to every response time it measures)."""
    if cpu_percent is not None and cpu_percent > CPU_LIMIT:
        return f"CPU {cpu_percent:.0f}%"
    if loop_lag_ms is not None and loop_lag_ms > max(LAG_FLOOR_MS, LAG_SHARE * median_ms):
        return f"event loop {loop_lag_ms:.1f} ms late on average (median latency {median_ms:.1f} ms)"
    return None


class Probe:
    """This process's running totals. A tick later than ``STALL_S`` means the process stood still
    (stopped, or starved of CPU): the interval goes to the gate of requests in flight, whose timeouts
    in it are then the generator's, not the endpoint's (smload.measure.drain)."""

    def __init__(self, gate: Any = None) -> None:
        self.lag_s = 0.0
        self.probes = 0
        self.stalled_s = 0.0
        self.stalled_before_test = 0.0
        self.gate = gate
        self.greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            before = time.perf_counter()
            gevent.sleep(PROBE_S)
            late = max(0.0, time.perf_counter() - before - PROBE_S)
            self.lag_s += late
            self.probes += 1
            if late > STALL_S:
                self.stalled(late)

    def stalled(self, seconds: float) -> None:
        self.stalled_s += seconds
        if self.gate is not None:
            now = time.time()
            self.gate.stalls = [*self.gate.stalls[-15:], (now - seconds, now)]

    def test_started(self) -> None:
        self.stalled_before_test = self.stalled_s

    def sample(self) -> list[float]:
        """[cpu seconds, loop lag seconds, probes] since the process started, and the seconds it stood
        still during the current test (a worker's first report of a test may come after a stall)."""
        times = psutil.Process().cpu_times()
        return [
            times.user + times.system,
            self.lag_s,
            float(self.probes),
            self.stalled_s - self.stalled_before_test,
        ]


class Samples:
    """On the master (or local runner): per process (a worker's id, or ``local``), (when, [cpu s,
    lag s, probes]) as they arrive, for the current test. A local runner adds its own probe's
    readings when it wants one."""

    def __init__(self) -> None:
        self.series: dict[str, list[tuple[float, list[float]]]] = {}

    def add(self, process: str, when: float, sample: list[float] | None) -> None:
        if sample is not None:
            self.series.setdefault(process, []).append((when, sample))

    def add_local(self, probe: Probe) -> None:
        self.add(LOCAL, time.time(), probe.sample())

    def latest(self, process: str) -> list[float] | None:
        samples = self.series.get(process)
        return samples[-1][1] if samples else None

    def by_process(self, since: float, until: float) -> dict[str, tuple[float | None, float | None]]:
        """Per process: (highest CPU %, highest mean loop lag in ms) over its report intervals in
        [since, until]; None where it had no interval long enough."""
        out = {}
        for process, samples in self.series.items():
            cpu, lag = None, None
            inside = [(t, s) for t, s in samples if since <= t <= until]
            for (t0, s0), (t1, s1) in zip(inside, inside[1:], strict=False):
                if t1 - t0 < MIN_INTERVAL_S:
                    continue
                percent = 100.0 * (s1[0] - s0[0]) / (t1 - t0)
                cpu = percent if cpu is None else max(cpu, percent)
                if s1[2] > s0[2]:
                    ms = 1000.0 * (s1[1] - s0[1]) / (s1[2] - s0[2])
                    lag = ms if lag is None else max(lag, ms)
            out[process] = (cpu, lag)
        return out

    def window(self, since: float, until: float) -> tuple[float | None, float | None]:
        """(highest CPU %, highest mean loop lag in ms) of the busiest processes over [since, until]."""
        figures = self.by_process(since, until).values()
        cpus = [cpu for cpu, _ in figures if cpu is not None]
        lags = [lag for _, lag in figures if lag is not None]
        return (max(cpus) if cpus else None, max(lags) if lags else None)
