"""The measurements (``smload.measure.store``) without Locust: recording request events, the worker
report as it travels (msgpack, as Locust's RPC sends it), the master's fold, and the test and
lifetime views. The wiring to Locust's events is tested with real processes
(tests/integration/test_exporter_latency.py)."""

import msgpack

from smload.errors import RequestFailure
from smload.measure import wire
from smload.measure.series import Series
from smload.measure.store import Measurements
from smload.record import PARTS, RECORD, TTFB, Identity, Record

A = Identity("InvokeEndpoint", "ep/a", "ep", "a")


def fire(m: Measurements, name="ep/a", ms=10.0, length=100, error=None, record=True):
    context = {RECORD: Record(A)} if record and name == "ep/a" else {}
    m.on_request(
        request_type="InvokeEndpoint",
        name=name,
        response_time=ms,
        response_length=length,
        exception=RequestFailure(error) if error else None,
        context=context,
    )


def travel(payload):
    """What Locust's RPC does to a report: msgpack there and back."""
    return msgpack.unpackb(msgpack.packb(payload, use_bin_type=True), raw=False)


def test_series_survive_the_wire():
    series = Series()
    for ms, error in ((1.5, None), (20.0, "ModelError(500)"), (900.0, "Timeout"), (20.0, "Timeout")):
        series.requests += 1
        series.histogram.record(ms)
        series.timing(TTFB).record(ms / 2)
        series.response_bytes += 10
        series.counts[PARTS] = series.counts.get(PARTS, 0) + 3
        if error:
            series.failures[error] = series.failures.get(error, 0) + 1
    report = wire.decode(travel(wire.encode({A: series}, [1.0, 0.5, 20.0])))
    copy = report.series[A]
    assert report.health == [1.0, 0.5, 20.0]
    assert copy.requests == 4 and copy.response_bytes == 40 and copy.counts == {PARTS: 12}
    assert copy.histogram.counts == series.histogram.counts
    assert copy.timings[TTFB].counts == series.timings[TTFB].counts
    assert copy.failures == {"ModelError(500)": 1, "Timeout": 2} and copy.failure_count == 3


def test_records_carry_identity_and_extra_kinds():
    m = Measurements(sends=True, aggregates=True)
    m.on_request(
        request_type="InvokeEndpointWithResponseStream",
        name="renamed",
        response_time=50.0,
        response_length=64,
        exception=None,
        context={
            RECORD: Record(
                Identity("InvokeEndpointWithResponseStream", "renamed", "ep", "b"),
                ((TTFB, 20.0),),
                ((PARTS, 4),),
            )
        },
    )
    fire(m, name="custom", record=False)  # a custom locustfile's own request: identity from Locust's fields
    series = m.test()
    stream = series[Identity("InvokeEndpointWithResponseStream", "renamed", "ep", "b")]
    assert stream.timings[TTFB].count == 1 and stream.counts == {PARTS: 4} and stream.histogram.count == 1
    assert series[Identity("InvokeEndpoint", "custom")].requests == 1


def test_local_views_and_test_boundaries():
    m = Measurements(sends=True, aggregates=True)
    for _ in range(5):
        fire(m)
    fire(m, error="ThrottlingException")
    fire(m, name="ep/b", ms=None)  # a request without a response time still counts
    life = m.lifetime()
    assert life[A].requests == 6
    assert life[Identity("InvokeEndpoint", "ep/b")].requests == 1
    assert (
        Identity("InvokeEndpoint", "ep/b") in life
        and "latency" not in life[Identity("InvokeEndpoint", "ep/b")].timings
    )
    assert life[A].failures == {"ThrottlingException": 1}

    fire(m)  # pending when the next test starts: it belongs to the test before
    m.start_test()
    assert m.test() == {}
    assert m.lifetime()[A].requests == 7

    fire(m, ms=30.0)
    hists = m.test_histograms()
    assert hists[A].count == 1
    assert m.lifetime()[A].histogram.count == 8
    hists[A].record(1.0)  # a copy: the measurements are untouched
    assert m.test_histograms()[A].count == 1


def test_master_folds_worker_reports_and_keeps_a_departed_workers_data():
    master = Measurements(sends=False, aggregates=True)
    workers = [Measurements(sends=False, aggregates=False) for _ in range(2)]
    for i, worker in enumerate(workers):
        for _ in range(3 + i):
            fire(worker, ms=12.0, length=7)
        fire(worker, ms=40.0, length=7, error="ModelError(424)")

    master.fold_report("w0", travel(workers[0].report()))
    master.fold_report("w1", travel(workers[1].report()))
    master.fold_report("w0", travel(workers[0].report()))  # nothing new: an empty delta changes nothing
    series = master.lifetime()[A]
    assert series.requests == 9 and series.histogram.count == 9 and series.response_bytes == 63
    assert series.failures == {"ModelError(424)": 2}
    assert set(master.last_report) == {"w0", "w1"}

    master.start_test()  # a second test; worker 1 is gone by now
    fire(workers[0], ms=12.0)
    master.fold_report("w0", travel(workers[0].report()))
    assert master.test()[A].requests == 1
    assert master.lifetime()[A].requests == 10


def test_an_unsent_report_goes_out_with_the_next():
    worker = Measurements(sends=False, aggregates=False)
    fire(worker)
    lost = worker.report()
    fire(worker)
    worker.keep_unsent(lost)
    master = Measurements(sends=False, aggregates=True)
    master.fold_report("w0", travel(worker.report()))
    assert master.lifetime()[A].requests == 2
