"""The CloudWatch poller when AWS says no - tested against moto in server mode, a local emulation of
CloudWatch, the SageMaker control plane and IAM (AWS itself cannot be reached from here), with IAM
enforcement switched on: the poller's user may call ``sagemaker:DescribeEndpoint`` only, and the
endpoint does not exist there. Each failure is logged once, clearly, with the permission it needs;
``sagemaker_cloudwatch_up`` is 0; the load test runs to its end and exits 0, its own metrics intact.
(The gauges and unit conversions of a poll that works: ``test_exporter_prometheus.py``.)"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from testkit.support import (
    answers,
    aws_env,
    free_port,
    http_get,
    locust_cmd,
    start_emulator,
    start_moto,
    wait_until,
)


def test_access_denied_and_a_missing_endpoint_are_logged_once_and_the_test_goes_on(procs, tmp_path):
    moto = start_moto(procs)
    key, secret = moto.user_allowed("sagemaker:DescribeEndpoint")
    moto.enforce_iam()
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=2,concurrency=4,latency_ms=10"
    )
    payload = tmp_path / "body.json"
    payload.write_text('{"inputs": [1]}')
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    env = aws_env(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, **moto.env())
    locust = procs.start(
        "locust",
        locust_cmd(
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "--run-time",
            "25s",
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
            "--cloudwatch",
            "--cloudwatch-interval",
            "10",
        ),
        env=env,
    )

    def samples() -> dict[str, float]:
        status, body = http_get(metrics_url)
        assert status == 200
        return {
            s.name: s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
            if not s.labels or s.name == "locust_requests_total"
        }

    wait_until(
        lambda: answers(metrics_url) and samples().get("sagemaker_cloudwatch_polls_total", 0) >= 2,
        60,
        "two CloudWatch polls",
    )
    during = samples()
    assert during["sagemaker_cloudwatch_up"] == 0
    assert during["locust_requests_total"] > 0  # the load test's own metrics are unaffected
    assert locust.wait(60) == 0, locust.log()[-3000:]

    log = locust.log()
    denied = [
        line
        for line in log.splitlines()
        if "CloudWatch poller: GetMetricData for endpoint 'ep' failed" in line
    ]
    missing = [
        line
        for line in log.splitlines()
        if "CloudWatch poller: DescribeEndpoint for endpoint 'ep' failed" in line
    ]
    assert len(denied) == 1 and len(missing) == 1, log[-4000:]  # three polls, each failure logged once
    assert "AccessDenied" in denied[0] and "the poller needs cloudwatch:GetMetricData" in denied[0]
    assert "The load test goes on" in denied[0]
    assert "Could not find endpoint" in missing[0] and "the poller needs" not in missing[0]
    assert "Traceback" not in log
