"""A custom locustfile: SageMakerUser subclasses with tasks that pass their own body, per-call
overrides and names; counted against the emulator exactly like the bundled locustfile."""

from __future__ import annotations

import json
import textwrap

from testkit.support import distributed_args, locust_results, run_locust, start_emulator

CONFIG = """
endpoints:
  - name: ab
    variants:
      - {name: variant-a, latency: 2, concurrency: 16}
      - {name: variant-b, latency: 2, concurrency: 16, stream: {parts: 3, part_delay_ms: 1}}
"""

LOCUSTFILE = textwrap.dedent("""
    import smload.exporter  # noqa: F401
    from locust import constant, task
    from smload import SageMakerUser


    class Caller(SageMakerUser):
        wait_time = constant(0)

        @task
        def pinned(self):
            result = self.client.invoke(b'{"pinned": true}', target_variant="variant-b", custom_attributes="k=v")
            assert result.error is None and result.variant == "variant-b" and result.body == b'{"pinned": true}'

        @task
        def renamed_stream(self):
            result = self.client.invoke(stream=True, target_variant="variant-b", name="renamed")
            assert result.parts == 3

        @task
        def any_variant(self):
            self.client.invoke()
""")


def test_custom_locustfile_overrides_and_names(procs, tmp_path):
    config = tmp_path / "ab.yaml"
    config.write_text(CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    locustfile = tmp_path / "custom_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    (tmp_path / "body.json").write_text('{"from": "payload"}')
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "6",
        "-r",
        "6",
        "-t",
        "4s",
        "--stop-timeout",
        "10",
        "--json",
        "--endpoint-name",
        "ab",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(tmp_path / "body.json"),
        "--report",
        str(tmp_path / "report"),
        *distributed_args(),
        locustfile=locustfile,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Traceback" not in result.stderr
    ours = locust_results(result)
    server = emulator.stats()["endpoints"]["ab"]["variants"]
    streamed = ours.requests[("InvokeEndpointWithResponseStream", "renamed")]
    pinned_and_any_b = ours.requests[("InvokeEndpoint", "ab/variant-b")]
    assert streamed > 0 and pinned_and_any_b > 0 and ours.requests[("InvokeEndpoint", "ab/variant-a")] > 0
    assert server["variant-b"]["requests"] == pinned_and_any_b + streamed
    assert server["variant-a"]["requests"] == ours.requests[("InvokeEndpoint", "ab/variant-a")]
    report = {
        (n["type"], n["name"]): n
        for n in json.loads((tmp_path / "report" / "report.json").read_text())["names"]
    }
    assert report[("InvokeEndpointWithResponseStream", "renamed")]["ttfb_ms"]["count"] == streamed
    assert ours.failures == {}
