"""A worker killed mid-test (SIGKILL, by its pid): the master keeps serving /metrics, Prometheus sees
``locust_workers{state="missing"}``, and no counter goes down - what the dead worker reported stays,
the live one keeps adding. (The requests it sent but never reported are lost to Locust and to the
exporter alike: that is why this run does not compare totals with the emulator.)"""

from __future__ import annotations

import signal
import time

from prometheus_client.parser import text_string_to_metric_families
from testkit.support import (
    LOCUSTFILE,
    free_port,
    http_get,
    locust_cmd,
    prometheus_config,
    start_emulator,
    start_prometheus,
    wait_until,
)

COUNTERS = (
    "locust_requests_total",
    "locust_request_failures_total",
    "locust_response_bytes_total",
    "locust_request_duration_seconds_bucket",
    "locust_request_duration_seconds_count",
    "locust_request_duration_seconds_sum",
)


def counters(url: str) -> dict[str, float]:
    status, body = http_get(url)
    assert status == 200, body[:300]
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name in COUNTERS:
                out[s.name + repr(sorted(s.labels.items()))] = s.value
    return out


def test_a_killed_worker_shows_as_missing_and_no_counter_decreases(procs, tmp_path):
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=2,concurrency=8,latency_ms=20"
    )
    payload = tmp_path / "body.json"
    payload.write_text('{"inputs": [1]}')
    master_port, web_port, metrics_port = free_port(), free_port(), free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    prometheus = start_prometheus(procs, prometheus_config({"locust": f"127.0.0.1:{metrics_port}"}))
    procs.start(
        "master",
        locust_cmd(
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
            "--autostart",
            "--expect-workers",
            "2",
            "-u",
            "6",
            "-r",
            "6",
            "--run-time",
            "60s",
            "--autoquit",
            "600",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload),
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            locustfile=LOCUSTFILE,
        ),
    )
    workers = [
        procs.start(
            "worker",
            locust_cmd(
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(master_port),
                locustfile=LOCUSTFILE,
            ),
        )
        for _ in range(2)
    ]
    wait_until(
        lambda: (
            prometheus.value('locust_workers{state="running"}') == 2
            and (prometheus.value("sum(locust_requests_total)") or 0) > 200
        ),
        60,
        "two running workers and 200 requests",
    )

    before = counters(metrics_url)
    killed_at = time.time()
    workers[0].signal(signal.SIGKILL)
    workers[0].wait(10)
    wait_until(
        lambda: prometheus.value('locust_workers{state="missing"}') == 1,
        30,
        "Prometheus to see a missing worker",
    )
    assert prometheus.value('locust_workers{state="running"}') == 1
    # the live worker keeps adding to counts that still hold what the dead one reported
    total = before[
        "locust_requests_total" + repr(sorted({"request_type": "InvokeEndpoint", "name": "ep/v1"}.items()))
    ]
    wait_until(
        lambda: prometheus.value("sum(locust_requests_total)") > total + 100,
        30,
        "more requests after the kill",
    )
    after = counters(metrics_url)

    assert set(before) <= set(after)
    decreased = {key: (before[key], after[key]) for key in before if after[key] < before[key]}
    assert not decreased, decreased
    assert sum(after[k] > before[k] for k in before) > 10  # they moved on, not just stayed put
    # Prometheus saw no counter reset across the whole run, scrape by scrape
    window = f"{int(time.time() - killed_at) + 60}s"
    for name in COUNTERS:
        assert prometheus.value(f"count({name})") > 0, name
        resets = prometheus.query(f"resets({name}[{window}]) > 0")
        assert resets == [], (name, resets)
