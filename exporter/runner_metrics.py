"""Gauges of the Locust runner itself (a prometheus_client collector, read at each scrape):
``locust_users``, ``locust_workers{state}``, ``locust_runner_state{state}``,
``locust_worker_cpu_usage_percent{worker}``, the event-loop lag counters
``locust_worker_event_loop_lag_seconds_total{worker}`` and ``locust_worker_event_loop_probes_total{worker}``
(:mod:`smload.measure.health`; their rate ratio is the mean lag), ``locust_requests_abandoned_total``
and ``locust_workers_lost_total`` (:mod:`smload.measure.drain`, :mod:`smload.run.lifeline`) ``locust_test_start_time_seconds``
and the open-loop counters ``locust_arrivals_total``, ``locust_arrivals_dropped_total`` and gauge
``locust_arrival_rate_target`` (the measurements' arrival counts and the master's current target)."""

from __future__ import annotations

from collections.abc import Iterator

from locust.env import Environment
from locust.runners import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from smload.measure import store
from smload.record import ARRIVALS, DROPPED

# Every state a runner or a worker can be in ("ready" is Locust's STATE_INIT): each one always has
# a series, 0 when nothing is in it, so that a panel never mistakes "no data" for "none".
STATES = (
    STATE_INIT,
    STATE_SPAWNING,
    STATE_RUNNING,
    STATE_CLEANUP,
    STATE_STOPPING,
    STATE_STOPPED,
    STATE_MISSING,
)
LOCAL_WORKER = "local"


class RunnerCollector(Collector):
    def __init__(self, environment: Environment):
        self.environment = environment

    def collect(self) -> Iterator[Metric]:
        runner = self.environment.runner
        users = GaugeMetricFamily(
            "locust_users", "Users running now (on the master: as the workers last reported)"
        )
        users.add_metric([], runner.user_count)
        yield users

        if isinstance(runner, MasterRunner):
            workers = [(node.id, node.state, node.cpu_usage) for node in runner.clients.values()]
        else:  # a local runner is its own single worker
            workers = [(LOCAL_WORKER, runner.state, runner.current_cpu_usage)]
        by_state = GaugeMetricFamily(
            "locust_workers", "Workers by state (missing: no heartbeat for 3 s)", labels=["state"]
        )
        for state in STATES:
            by_state.add_metric([state], sum(1 for _, s, _ in workers if s == state))
        yield by_state

        runner_state = GaugeMetricFamily(
            "locust_runner_state", "1 for the runner's current state", labels=["state"]
        )
        for state in STATES:
            runner_state.add_metric([state], 1 if runner.state == state else 0)
        yield runner_state

        cpu = GaugeMetricFamily(
            "locust_worker_cpu_usage_percent",
            "CPU use of each worker process, as its last heartbeat said",
            labels=["worker"],
        )
        for worker, _, usage in workers:
            cpu.add_metric([worker], usage)
        yield cpu

        # How late each worker's 50 ms probe timer fired, in total, and how many probes: a saturated
        # event loop delays every response time it measures by as much (CPU alone misses a worker
        # starved by its neighbours). rate(lag) / rate(probes) is the mean lag.
        measurements = store.of(self.environment)
        if isinstance(runner, MasterRunner):
            samples = measurements.health
            totals = {
                worker: latest for worker, _, _ in workers if (latest := samples.latest(worker)) is not None
            }
        else:
            totals = {LOCAL_WORKER: measurements.probe.sample()}
        lag = CounterMetricFamily(
            "locust_worker_event_loop_lag",
            "Total lateness of the worker's 50 ms probe timer, seconds",
            labels=["worker"],
            unit="seconds",
        )
        probes = CounterMetricFamily(
            "locust_worker_event_loop_probes", "Probe timers fired on the worker", labels=["worker"]
        )
        for worker, (_, lag_s, count, *_rest) in totals.items():
            lag.add_metric([worker], lag_s)
            probes.add_metric([worker], count)
        yield lag
        yield probes

        counts = measurements.lifetime_arrivals()
        arrivals = CounterMetricFamily(
            "locust_arrivals", "Open loop: arrivals scheduled (sent or dropped), all workers"
        )
        arrivals.add_metric([], counts.get(ARRIVALS, 0))
        yield arrivals
        dropped = CounterMetricFamily(
            "locust_arrivals_dropped",
            "Open loop: arrivals dropped because every executor was busy (--max-in-flight)",
        )
        dropped.add_metric([], counts.get(DROPPED, 0))
        yield dropped
        if measurements.arrival_target is not None:
            target = GaugeMetricFamily(
                "locust_arrival_rate_target",
                "Open loop: the total arrival rate asked for now, "
                "requests per second (0 once the test stopped)",
            )
            target.add_metric([], measurements.arrival_target)
            yield target
        abandoned = CounterMetricFamily(
            "locust_requests_abandoned",
            "Requests in flight when a test ended and not "
            "awaited (--drain-timeout), or whose timeout the generator's own stall caused",
        )
        abandoned.add_metric([], measurements.abandoned_lifetime)
        yield abandoned
        lost = CounterMetricFamily(
            "locust_workers_lost",
            "Workers that went silent during a test (their last requests are missing from the counts)",
        )
        lost.add_metric([], measurements.lost_lifetime)
        yield lost

        started = measurements.test_started_at
        if started is not None:
            start = GaugeMetricFamily(
                "locust_test_start_time_seconds", "Unix time at which the current test started"
            )
            start.add_metric([], started)
            yield start
