"""The open-loop metrics and the dashboard's "Open loop" row, against a real Prometheus scraping a
real open-loop run (the emulator, a Locust master and two workers): every query of the row returns
data during the run, the target gauge says the rate asked for, and at the end the counters equal
report.json's arrivals and drops exactly. Grafana cannot run here: its queries run on Prometheus."""

from __future__ import annotations

import json
import time

from testkit.dashboards import OPEN_LOOP_ROW, load, metric_names, queries, resolve_variables, substitute
from testkit.support import (
    aws_env,
    distributed_args,
    free_port,
    http_get,
    locust_cmd,
    prometheus_config,
    start_emulator,
    start_prometheus,
    wait_until,
)

RATE = 150  # at 20 ms with 3 requests in flight at most (150 req/s at best): Poisson bursts are dropped


def test_open_loop_row_and_counters(procs, tmp_path):
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=1,concurrency=4,latency_ms=20"
    )
    (tmp_path / "body.json").write_text('{"inputs": [1]}')
    metrics_port = free_port()
    prometheus = start_prometheus(procs, prometheus_config({"locust": f"127.0.0.1:{metrics_port}"}))
    report = tmp_path / "report"
    locust = procs.start(
        "locust",
        locust_cmd(
            "--autostart",
            "--autoquit",
            "8",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(free_port()),
            "-t",
            "25s",
            "--stop-timeout",
            "10",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(tmp_path / "body.json"),
            "--arrival-rate",
            str(RATE),
            "--max-in-flight",
            "3",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            "--report",
            str(report),
            *distributed_args(),
        ),
        env=aws_env(),
    )

    wait_until(
        lambda: (prometheus.value("sum(locust_arrivals_total)") or 0) > 10 * RATE, 60, "10 s of arrivals"
    )
    assert prometheus.value("sum(locust_arrival_rate_target)") == RATE
    overview = load()["overview.json"]
    values = resolve_variables(overview, prometheus)
    row = queries("overview.json", overview, rows=lambda title: title == OPEN_LOOP_ROW)
    assert len(row) == 6
    empty = []
    for q in row:
        expr = substitute(q.expr, values)
        if not prometheus.query_range(expr, time.time() - 20, time.time(), 2):
            empty.append(expr)
    assert not empty, empty
    status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    exported = {
        line.split("{")[0].split(" ")[0] for line in body.decode().splitlines() if not line.startswith("#")
    }
    exported |= {name.removesuffix(suffix) for name in exported for suffix in ("_bucket", "_sum", "_count")}
    assert {name for q in row for name in metric_names(q.expr)} <= exported

    # stopped (the workers' last reports are in), and the master keeps serving for --autoquit 8 s
    wait_until(lambda: prometheus.value('locust_runner_state{state="stopped"}') == 1, 60, "the test to stop")
    stopped = time.time()
    wait_until(
        lambda: (prometheus.value("max(timestamp(locust_arrivals_total))") or 0) > stopped + 1,
        10,
        "a scrape a second after the stop",
    )
    scraped = (
        prometheus.value("sum(locust_arrivals_total)"),
        prometheus.value("sum(locust_arrivals_dropped_total)"),
    )
    assert prometheus.value("sum(locust_arrival_rate_target)") == 0
    assert locust.wait(timeout=60) == 0, locust.log()[-4000:]
    arrivals = json.loads((report / "report.json").read_text())["arrivals"]
    assert arrivals["dropped"] > 0 and arrivals["sent"] == emulator.stats()["requests"]
    assert scraped == (arrivals["arrivals"], arrivals["dropped"])
