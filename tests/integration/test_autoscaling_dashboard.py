"""The autoscaling dashboard (helm/sagemaker-loadtest/dashboards/autoscaling.json) against a real
Prometheus while the emulator scales: the bundled example (time_scale 60) under a real Locust run
that saturates it, the exporter with its CloudWatch poller reading DescribeEndpoint from the
emulator's control-plane route (AWS_ENDPOINT_URL_SAGEMAKER; CloudWatch itself points nowhere, so
only the instance counts are polled). Grafana cannot run here: every panel query runs against
Prometheus instead, with the template variables resolved as Grafana would."""

import time

import pytest
from testkit.dashboards import load, metric_names, queries, resolve_variables, substitute
from testkit.support import (
    REPO,
    aws_env,
    free_port,
    locust_cmd,
    prometheus_config,
    start_emulator,
    start_prometheus,
    wait_until,
)

EXAMPLE = REPO / "emulator" / "examples" / "autoscaling.yaml"
RUN_SECONDS = 25


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from testkit.support import Procs

    tmp = tmp_path_factory.mktemp("autoscaling-dashboard")
    procs = Procs(tmp)
    try:
        emulator = start_emulator(procs, "--config", str(EXAMPLE))
        (tmp / "one.json").write_text('{"inputs": [1, 2, 3]}')
        metrics_port = free_port()
        prometheus = start_prometheus(
            procs,
            prometheus_config(
                {"locust": f"127.0.0.1:{metrics_port}", "emulator": f"127.0.0.1:{emulator.port}"}
            ),
        )
        env = aws_env(
            AWS_ENDPOINT_URL_SAGEMAKER=emulator.url, AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:9"
        )
        locust = procs.start(
            "locust",
            locust_cmd(
                "--headless",
                "-u",
                "12",
                "-r",
                "12",
                "--run-time",
                f"{RUN_SECONDS}s",
                "--stop-timeout",
                "10",
                "--endpoint-name",
                "autoscaling",
                "--endpoint-url",
                emulator.url,
                "--region",
                "us-east-1",
                "--payload",
                str(tmp / "one.json"),
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(metrics_port),
                "--cloudwatch",
                "--cloudwatch-interval",
                "10",
            ),
            env=env,
        )

        def scaled() -> bool:
            assert locust.alive() or locust.popen.returncode == 0, locust.log()[-2000:]
            return (prometheus.value("max(sagemaker_emulator_instances)") or 0) >= 2 and (
                prometheus.value("max(sagemaker_instances)") or 0
            ) >= 2

        wait_until(
            scaled, 60, "the emulator to scale out, and the poller (every 10 s) and Prometheus to see it"
        )
        started = time.time()
        wait_until(lambda: time.time() - started > 3, 10, "a few more scrapes")
        results = {}
        for name, dashboard in load().items():
            if name != "autoscaling.json":
                continue
            values = resolve_variables(dashboard, prometheus)
            for q in queries(name, dashboard):
                expr = substitute(q.expr, values)
                rows = prometheus.query_range(expr, time.time() - 30, time.time(), 1)
                results[(q.panel, q.expr)] = (expr, rows)
        yield {"prometheus": prometheus, "results": results, "values": values}
        locust.wait(RUN_SECONDS + 60)
    finally:
        procs.stop_all()


def test_every_autoscaling_panel_query_returns_data(run):
    results = run["results"]
    assert len(results) == 7  # two per panel, one for the scaling events
    empty = [f"{panel}: {expr}" for (panel, _), (expr, rows) in results.items() if not rows]
    assert not empty, empty
    assert run["values"]["endpoint"] == "autoscaling"


def test_the_panels_show_the_scale_out(run):
    def peak(panel, ref_expr_part):
        ((expr, rows),) = [v for (p, e), v in run["results"].items() if p == panel and ref_expr_part in e]
        return max(float(value) for row in rows for _, value in row["values"] if value != "NaN")

    assert peak("Instances", "sagemaker_emulator_instances") >= 2
    assert peak("Instances", "sagemaker_instances") >= 2  # DescribeEndpoint, polled by the exporter
    assert peak("Scaling events", "scaling_events_total") > 0
    assert peak("Client request rate", "locust_requests_total") > 100
    assert peak("Client latency p50 / p99", "0.99") > 0


def test_the_panels_use_only_exported_metrics(run):
    known = {
        "sagemaker_emulator_instances",
        "sagemaker_instances",
        "sagemaker_emulator_scaling_events_total",
        "locust_request_duration_seconds",
        "locust_requests_total",
        "locust_request_failures_total",
    }
    for (_, expr), _ in run["results"].items():
        assert metric_names(expr) <= known, expr
