"""Latency, response bytes and failures per ``(request_type, name)``, exact across Locust's workers.

Every runner records each request (Locust's ``request`` event) into a pending
:class:`~smload.histogram.Histogram` per ``(request_type, name)``. A worker sends what is pending
with each report to the master (``report_to_master``; one more report as soon as its users have
stopped, so that a test's tail reaches the master before the next test starts) and forgets it; the
master merges every report (``worker_report``), from live and since-departed workers alike. A local
runner (and the master, for requests fired on it) folds its pending data in whenever it is read.

Two views on the master and on a local runner:

* :func:`lifetime` - since the process started. Only ever grows: not reset by Locust's stats
  resets, a new test or a lost worker. The exporter publishes it as Prometheus counters.
* :func:`test_histograms` / :func:`test_series` - since the current test's ``test_start``: what
  checks, calibration and reports use.

Importing this module registers an ``init`` listener and nothing else: it starts no server.
Import it at module level (before Locust fires ``init``), never lazily inside a test.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from smload.errors import classify
from smload.histogram import Histogram

Key = tuple[str, str]  # (request_type, name)

REPORT_FIELD = "smload_latency"  # our field in Locust's worker report (a msgpack-friendly list)


@dataclass
class Series:
    """What happened to one ``(request_type, name)``: requests, their latency, bytes and failures."""

    requests: int = 0  # every request, timed or not (Locust counts a None response time too)
    histogram: Histogram = field(default_factory=Histogram)  # ms, the timed requests
    response_bytes: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # smload.errors.classify(exception) -> count

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    def merge(self, other: Series) -> Series:
        self.requests += other.requests
        self.histogram.merge(other.histogram)
        self.response_bytes += other.response_bytes
        for error, n in other.failures.items():
            self.failures[error] = self.failures.get(error, 0) + n
        return self

    def copy(self) -> Series:
        return Series().merge(self)

    def to_wire(self) -> list:
        return [self.requests, self.histogram.to_wire(), self.response_bytes, list(self.failures.items())]

    @classmethod
    def from_wire(cls, wire: list) -> Series:
        requests, histogram, response_bytes, failures = wire
        return cls(requests, Histogram.from_wire(histogram), response_bytes, dict(failures))


def _merge_into(target: dict[Key, Series], key: Key, series: Series) -> None:
    if key in target:
        target[key].merge(series)
    else:
        target[key] = series.copy()


class LatencyPlumbing:
    """The per-environment state, wired to the environment's events by :func:`attach`."""

    def __init__(self, environment: Environment):
        self.environment = environment
        self.pending: dict[Key, Series] = {}  # recorded here, not yet sent or folded in
        self.lifetime: dict[Key, Series] = {}
        self.test: dict[Key, Series] = {}
        self.test_started_at: float | None = None  # unix time of the current test's test_start

    # --- every runner -------------------------------------------------------------------------
    def on_request(self, request_type, name, response_time, response_length, exception=None, **_kwargs) -> None:
        key = (request_type, name)
        series = self.pending.get(key)
        if series is None:
            series = self.pending[key] = Series()
        series.requests += 1
        if response_time is not None:
            series.histogram.record(response_time)
        if response_length:
            series.response_bytes += response_length
        if exception is not None:
            error = classify(exception)
            series.failures[error] = series.failures.get(error, 0) + 1

    def take_pending(self) -> dict[Key, Series]:
        pending, self.pending = self.pending, {}
        return pending

    # --- worker ---------------------------------------------------------------------------------
    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_FIELD] = [[rt, name, series.to_wire()] for (rt, name), series in self.take_pending().items()]

    def on_worker_test_stop(self, environment: Environment, **_kwargs) -> None:
        """Users have stopped: report now, so the test's last requests reach the master before its
        ``client_stopped`` (same socket, in order) and hence before any next test starts there."""
        runner = environment.runner
        if not self.pending or not isinstance(runner, WorkerRunner):
            return
        data: dict[str, Any] = {}
        environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        try:
            runner.send_message("stats", data)
        except Exception:  # noqa: BLE001 - no master right now: keep ours for the next report
            for request_type, name, wire in data.get(REPORT_FIELD, ()):
                _merge_into(self.pending, (request_type, name), Series.from_wire(wire))

    # --- master ---------------------------------------------------------------------------------
    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        for request_type, name, wire in data.get(REPORT_FIELD, ()):
            self._add((request_type, name), Series.from_wire(wire))

    # --- master and local runner ----------------------------------------------------------------
    def _add(self, key: Key, series: Series) -> None:
        _merge_into(self.lifetime, key, series)
        _merge_into(self.test, key, series)

    def fold_pending(self) -> None:
        for key, series in self.take_pending().items():
            self._add(key, series)

    def on_test_start(self, environment: Environment, **_kwargs) -> None:
        if isinstance(environment.runner, WorkerRunner):
            return  # a worker keeps its pending data: it belongs to the lifetime counters
        self.fold_pending()  # requests fired before the start belong to the test before
        self.test = {}
        self.test_started_at = time.time()


_plumbing: weakref.WeakKeyDictionary[Environment, LatencyPlumbing] = weakref.WeakKeyDictionary()


def attach(environment: Environment) -> LatencyPlumbing:
    """Wire the plumbing to ``environment`` (idempotent). Done for you at Locust's ``init``; call it
    yourself for an Environment you build in code, after creating its runner."""
    plumbing = _plumbing.get(environment)
    if plumbing is not None:
        return plumbing
    plumbing = _plumbing[environment] = LatencyPlumbing(environment)
    hooks = environment.events
    hooks.request.add_listener(plumbing.on_request)
    hooks.test_start.add_listener(plumbing.on_test_start)
    if isinstance(environment.runner, WorkerRunner):
        hooks.report_to_master.add_listener(plumbing.on_report_to_master)
        hooks.test_stop.add_listener(plumbing.on_worker_test_stop)
    elif isinstance(environment.runner, MasterRunner):
        hooks.worker_report.add_listener(plumbing.on_worker_report)
    return plumbing


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs) -> None:
    attach(environment)


def _aggregating(environment: Environment) -> LatencyPlumbing:
    plumbing = _plumbing.get(environment)
    if plumbing is None:
        raise RuntimeError(
            "smload.exporter.latency is not attached to this environment: import it at module level "
            "(before Locust fires init), or call smload.exporter.latency.attach(environment)"
        )
    if isinstance(environment.runner, WorkerRunner):
        raise RuntimeError("latency views exist on the master or a local runner, not on a worker")
    plumbing.fold_pending()
    return plumbing


def lifetime(environment: Environment) -> dict[Key, Series]:
    """Everything recorded since the process started, merged from all workers (live, stopped or
    lost). Counts only ever grow. The returned objects are live: copy them to keep a snapshot."""
    return _aggregating(environment).lifetime


def test_series(environment: Environment) -> dict[Key, Series]:
    """Requests, latency, bytes and failures per ``(request_type, name)`` since the current test
    started (the last ``test_start``), merged from all workers. Live objects: copy to keep."""
    return _aggregating(environment).test


def test_histograms(environment: Environment) -> dict[Key, Histogram]:
    """Latency (ms) per ``(request_type, name)`` since the current test started, merged from all
    workers. Copies: the caller may keep or change them."""
    return {key: series.histogram.copy() for key, series in test_series(environment).items()}


def test_start_time(environment: Environment) -> float | None:
    """Unix time at which the current test started; None before the first test."""
    return _aggregating(environment).test_started_at


def test_failures(environment: Environment) -> dict[Key, dict[str, int]]:
    """Failures per ``(request_type, name)`` and error type (``ModelError(500)``, ``Timeout``, ...)
    since the current test started. Use :func:`smload.errors.base_type` to group by type."""
    return {key: dict(series.failures) for key, series in test_series(environment).items() if series.failures}


# pytest would collect these as tests wherever a test module imports them by name.
for _view in (test_series, test_histograms, test_failures, test_start_time):
    _view.__test__ = False  # type: ignore[attr-defined]
