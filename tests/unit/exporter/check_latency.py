"""Unit checks of the latency plumbing, with real Locust environments and runners in-process."""

import pytest
from locust import User
from locust.env import Environment
from locust.event import Events
from locust.rpc.protocol import Message
from support import free_port

from smload.exporter import latency
from smload.exporter.latency import Series


class Nobody(User):  # never spawned here
    pass


def fire(env, name="ep/a", ms=10.0, length=100, error=None, request_type="InvokeEndpoint"):
    env.events.request.fire(request_type=request_type, name=name, response_time=ms, response_length=length,
                            exception=Exception(error) if error else None, context={})


def local_env():
    env = Environment(user_classes=[Nobody], events=Events())
    env.create_local_runner()
    latency.attach(env)
    return env


def test_series_survives_locusts_wire_format():
    series = Series()
    for ms, error in ((1.5, None), (20.0, "ModelError(500)"), (900.0, "Timeout"), (20.0, "Timeout")):
        series.requests += 1
        series.histogram.record(ms)
        series.response_bytes += 10
        if error:
            series.failures[error] = series.failures.get(error, 0) + 1
    data = {latency.REPORT_FIELD: [["InvokeEndpoint", "ep/a", series.to_wire()]]}
    back = Message.unserialize(Message("stats", data, "worker-1").serialize()).data
    (rt, name, wire), = back[latency.REPORT_FIELD]
    copy = Series.from_wire(wire)
    assert (rt, name) == ("InvokeEndpoint", "ep/a")
    assert copy.requests == 4 and copy.response_bytes == 40
    assert copy.histogram.counts == series.histogram.counts
    assert copy.failures == {"ModelError(500)": 1, "Timeout": 2}
    assert copy.failure_count == 3


def test_local_runner_views_and_test_boundaries():
    env = local_env()
    for _ in range(5):
        fire(env)
    fire(env, error="ThrottlingException")
    fire(env, name="ep/b", ms=None)  # a request without a response time still counts
    life = latency.lifetime(env)
    assert life[("InvokeEndpoint", "ep/a")].requests == 6
    assert life[("InvokeEndpoint", "ep/b")].requests == 1
    assert life[("InvokeEndpoint", "ep/b")].histogram.count == 0
    assert latency.test_failures(env) == {("InvokeEndpoint", "ep/a"): {"ThrottlingException": 1}}

    fire(env)  # pending when the next test starts: it belongs to the test before
    env.events.test_start.fire(environment=env)
    assert latency.test_series(env) == {}
    assert latency.lifetime(env)[("InvokeEndpoint", "ep/a")].requests == 7

    fire(env, ms=30.0)
    env.stats.reset_all()  # Locust's reset touches neither view
    hists = latency.test_histograms(env)
    assert hists[("InvokeEndpoint", "ep/a")].count == 1
    assert latency.lifetime(env)[("InvokeEndpoint", "ep/a")].histogram.count == 8
    hists[("InvokeEndpoint", "ep/a")].record(1.0)  # a copy: the plumbing is untouched
    assert latency.test_histograms(env)[("InvokeEndpoint", "ep/a")].count == 1


def test_attach_is_idempotent():
    env = local_env()
    latency.attach(env)
    fire(env)
    assert latency.lifetime(env)[("InvokeEndpoint", "ep/a")].requests == 1


def test_master_merges_worker_reports_and_keeps_a_departed_workers_data():
    env = Environment(user_classes=[Nobody], events=Events())
    env.create_master_runner("127.0.0.1", free_port())
    latency.attach(env)
    try:
        workers = [latency.LatencyPlumbing(env) for _ in range(2)]  # their worker-side halves
        for i, worker in enumerate(workers):
            for _ in range(3 + i):
                worker.on_request("InvokeEndpoint", "ep/a", 12.0, 7, None)
            worker.on_request("InvokeEndpoint", "ep/a", 40.0, 7, Exception("ModelError(424)"))

        def report(worker, client_id):
            data = {}
            worker.on_report_to_master(client_id, data)
            wire = Message.unserialize(Message("stats", data, client_id).serialize()).data
            env.events.worker_report.fire(client_id=client_id, data=wire)

        report(workers[0], "w0")
        report(workers[1], "w1")
        report(workers[0], "w0")  # nothing new: an empty delta changes nothing
        series = latency.lifetime(env)[("InvokeEndpoint", "ep/a")]
        assert series.requests == 9 and series.histogram.count == 9 and series.response_bytes == 63
        assert series.failures == {"ModelError(424)": 2}
        assert env.runner.stats.total.num_requests == 0  # our field rides along; Locust's stats are Locust's

        env.events.test_start.fire(environment=env)  # a second test; worker 1 is gone by now
        workers[0].on_request("InvokeEndpoint", "ep/a", 12.0, 7, None)
        report(workers[0], "w0")
        assert latency.test_series(env)[("InvokeEndpoint", "ep/a")].requests == 1
        assert latency.lifetime(env)[("InvokeEndpoint", "ep/a")].requests == 10
    finally:
        env.runner.quit()


def test_views_need_the_plumbing_and_an_aggregating_runner():
    env = Environment(user_classes=[Nobody], events=Events())
    env.create_local_runner()
    with pytest.raises(RuntimeError, match="import it at module level"):
        latency.test_histograms(env)
