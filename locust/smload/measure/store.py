"""Everything recorded per request, exact across Locust's workers: :class:`Measurements`, one per
Locust Environment (:func:`attach`, :func:`of`).

Every process records each request (Locust's ``request`` event, with the client's
:class:`~smload.record.Record` when there is one) into a pending :class:`~.series.Series` per
request identity. A worker sends what is pending, with its generator-health readings, in each
report to the master (:mod:`.wire`; once more as soon as its users have stopped, so that a test's
tail reaches the master before the next test starts) and forgets it; the master folds in every
report, from live and since-departed workers alike. A local runner (and the master, for requests
fired on it) folds its pending data in whenever it is read.

Two views on the master and on a local runner:

* :meth:`Measurements.lifetime` - since the process started. Only ever grows: not reset by
  Locust's stats resets, a new test or a lost worker. The exporter publishes it as counters.
* :meth:`Measurements.test` - since the current test's start: what checks, calibration and
  reports use.

Open-loop arrivals (:mod:`smload.load`) are counted here too, per process rather than per identity
(a dropped arrival never had one): :meth:`Measurements.count_arrivals`, with the same pending ->
report -> fold path and the same two views (:meth:`lifetime_arrivals`, :meth:`test_arrivals`).
``arrival_target`` is the master's current total target rate (req/s; None in closed loop).

The listeners that feed it are registered by :mod:`smload.run.hooks`; this module registers none.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from smload.errors import classify
from smload.record import ARRIVALS, DROPPED, LATENCY, RECORD, Identity

from . import wire
from .drain import InFlight
from .health import Probe, Samples
from .histogram import Histogram
from .series import Series, merge_into

_ATTRIBUTE = "smload_measurements"  # where an Environment keeps its Measurements


# silent this long (or at the test's end): lost, not a worker that missed a few heartbeats
LOST_AFTER_S = 10.0


class LostWorker(NamedTuple):
    name: str  # "worker 1"
    lost_at: float  # unix time it was found silent
    last_report: float
    unreported_estimate: int  # requests it probably made and never reported
    back_at: float | None = None  # it came back (a hung process resumed, a busy machine let it run)

    def lost(self, now: float) -> bool:
        return (self.back_at or now) - self.lost_at >= LOST_AFTER_S or self.back_at is None


class Measurements:
    def __init__(self, sends: bool, aggregates: bool):
        self.pending: dict[Identity, Series] = {}  # recorded here, not yet sent or folded in
        self.lifetime_series: dict[Identity, Series] = {}
        self.test_series: dict[Identity, Series] = {}
        self.test_started_at: float | None = None  # unix time of the current test's start
        self.in_flight = InFlight()  # this process's requests under way (the client's gate)
        self.probe = Probe(self.in_flight) if sends else None  # this process's generator health
        self.health = Samples() if aggregates else None  # every sending process's readings
        self.last_report: dict[str, float] = {}  # worker -> when its last report arrived (unix time)
        self.abandoned_lifetime = 0  # requests cut off at a test's end (drain), every process's
        self.abandoned_test = 0
        self._abandoned_reported = 0  # of this process's own (in_flight.abandoned), folded or sent
        self.report_rates: dict[str, float] = {}  # worker -> requests per second in its last report interval
        self.silent: dict[str, LostWorker] = {}  # workers that went silent during the current test
        self.lost_lifetime = 0
        self.pending_arrivals: dict[str, int] = {}  # open loop: counted here, not yet sent or folded in
        self.lifetime_arrival_counts: dict[str, int] = {}
        self.test_arrival_counts: dict[str, int] = {}
        self.arrival_target: float | None = None  # the current total target rate (master or local runner)

    # --- recording: every process ------------------------------------------------------------
    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None,
        exception: Any = None,
        context: Any = None,
        **_kwargs: Any,
    ) -> None:
        record = context.get(RECORD) if context else None
        key = record.identity if record is not None else Identity(request_type, name)
        series = self.pending.get(key)
        if series is None:
            series = self.pending[key] = Series()
        series.requests += 1
        if response_time is not None:
            series.timing(LATENCY).record(response_time)
        if response_length:
            series.response_bytes += response_length
        if exception is not None:
            error = classify(exception)
            series.failures[error] = series.failures.get(error, 0) + 1
        if record is not None:
            for kind, ms in record.timings:
                series.timing(kind).record(ms)
            for counter, n in record.counts:
                series.counts[counter] = series.counts.get(counter, 0) + n

    def count_arrivals(self, arrivals: int, dropped: int) -> None:
        """Open loop: ``arrivals`` scheduled here, ``dropped`` of them because no executor was idle."""
        pending = self.pending_arrivals
        pending[ARRIVALS] = pending.get(ARRIVALS, 0) + arrivals
        if dropped:
            pending[DROPPED] = pending.get(DROPPED, 0) + dropped

    # --- worker -----------------------------------------------------------------------------------
    def report(self) -> list:
        """What goes to the master now (and is forgotten here)."""
        pending, self.pending = self.pending, {}
        arrivals, self.pending_arrivals = self.pending_arrivals, {}
        return wire.encode(
            pending, self.probe.sample() if self.probe else None, self._new_abandoned(), arrivals
        )

    def _new_abandoned(self) -> int:
        now = self.in_flight.abandoned
        new, self._abandoned_reported = now - self._abandoned_reported, now
        return new

    def keep_unsent(self, payload: list) -> None:
        """A report that could not be sent: its requests go out with the next one."""
        report = wire.decode(payload)
        for key, series in report.series.items():
            merge_into(self.pending, key, series)
        self._abandoned_reported -= report.abandoned
        _add_counts(self.pending_arrivals, report.arrivals)

    # --- master and local runner ---------------------------------------------------------------
    def fold_report(self, process: str, payload: Any) -> None:
        now = time.time()
        previous, self.last_report[process] = self.last_report.get(process, self.test_started_at), now
        if payload is None:
            return
        report = wire.decode(payload)
        if previous is not None and now - previous > 0.5:
            self.report_rates[process] = sum(s.requests for s in report.series.values()) / (now - previous)
        for key, series in report.series.items():
            self._add(key, series)
        self._add_abandoned(report.abandoned)
        self._add_arrivals(report.arrivals)
        if self.health is not None:
            self.health.add(process, time.time(), report.health)

    def _add(self, key: Identity, series: Series) -> None:
        merge_into(self.lifetime_series, key, series)
        merge_into(self.test_series, key, series)

    def worker_silent(self, process: str, name: str, when: float) -> LostWorker:
        """A worker went silent (killed, hung, partitioned): what it may have done since its last report
        is missing. Estimated at its last report's rate (the other workers' mean before its first) over
        the time since (a lower bound when it kept sending while hung)."""
        last = self.last_report.get(process) or self.test_started_at or when
        rates = self.report_rates
        rate = rates.get(process) or (sum(rates.values()) / len(rates) if rates else 0.0)
        self.lost_lifetime += 1
        silent = LostWorker(name, when, last, round(rate * (when - last)))
        self.silent[process] = silent
        return silent

    def worker_back(self, process: str, when: float) -> None:
        self.silent[process] = self.silent[process]._replace(back_at=when)

    @property
    def lost(self) -> dict[str, LostWorker]:
        """The workers this test lost: silent at its end, or for LOST_AFTER_S or more."""
        now = time.time()
        return {process: w for process, w in self.silent.items() if w.lost(now)}

    def _add_abandoned(self, n: int) -> None:
        self.abandoned_lifetime += n
        self.abandoned_test += n

    def _add_arrivals(self, counts: dict[str, int]) -> None:
        if counts:
            _add_counts(self.lifetime_arrival_counts, counts)
            _add_counts(self.test_arrival_counts, counts)

    def fold_pending(self) -> None:
        pending, self.pending = self.pending, {}
        for key, series in pending.items():
            self._add(key, series)
        self._add_abandoned(self._new_abandoned())
        arrivals, self.pending_arrivals = self.pending_arrivals, {}
        self._add_arrivals(arrivals)

    def start_test(self) -> None:
        """A new test: requests fired before it belong to the one before."""
        self.fold_pending()
        self.test_series = {}
        self.abandoned_test = 0
        self.silent = {}
        self.test_arrival_counts = {}
        self.test_started_at = time.time()
        if self.health is not None:
            self.health.series.clear()

    # --- views (master and local runner) ----------------------------------------------------------
    def lifetime(self) -> dict[Identity, Series]:
        """Since the process started, merged from all workers. Live objects: copy to keep."""
        self.fold_pending()
        return self.lifetime_series

    def test(self) -> dict[Identity, Series]:
        """Since the current test started, merged from all workers. Live objects: copy to keep."""
        self.fold_pending()
        return self.test_series

    def lifetime_arrivals(self) -> dict[str, int]:
        """Open loop, since the process started: ``{ARRIVALS: n, DROPPED: n}`` (absent: 0)."""
        self.fold_pending()
        return self.lifetime_arrival_counts

    def test_arrivals(self) -> dict[str, int]:
        """Open loop, since the current test started."""
        self.fold_pending()
        return self.test_arrival_counts

    def test_histograms(self, kind: str = LATENCY) -> dict[Identity, Histogram]:
        """One kind of timing per identity since the current test started (copies)."""
        return {
            key: series.timings[kind].copy() for key, series in self.test().items() if kind in series.timings
        }


def _add_counts(target: dict[str, int], counts: dict[str, int]) -> None:
    for name, n in counts.items():
        target[name] = target.get(name, 0) + n


def attach(environment: Any, sends: bool, aggregates: bool) -> Measurements:
    """The environment's Measurements, created on first call (idempotent)."""
    measurements = getattr(environment, _ATTRIBUTE, None)
    if measurements is None:
        measurements = Measurements(sends, aggregates)
        setattr(environment, _ATTRIBUTE, measurements)
    return measurements


def of(environment: Any) -> Measurements:
    measurements = getattr(environment, _ATTRIBUTE, None)
    if measurements is None:
        raise RuntimeError(
            "no smload measurements on this environment: the smload plugin was not loaded "
            "(import smload, or run a locustfile that does)"
        )
    return measurements
