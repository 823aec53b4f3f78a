"""The LLM dashboard (helm/sagemaker-loadtest/dashboards/llm.json) against a real Prometheus during a
real LLM run: one Locust process streaming chat completions from the emulator's OpenAI-compatible
route (an LLM variant with injected throttling and unavailability, so that the failures have a type
to show), with --goodput, scraped every second. Grafana cannot run here: every panel query runs against
Prometheus instead, with the template variables resolved as Grafana would.

* every query of every panel returns data during the run;
* every query names only metrics that the exporter or the emulator exports;
* at the end, the "this test" panels equal the emulator's truth exactly: tokens in and out, requests.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from testkit.dashboards import LLM, load, metric_names, queries, resolve_variables, substitute
from testkit.support import (
    Procs,
    aws_env,
    free_port,
    http_get,
    locust_cmd,
    prometheus_config,
    start_emulator,
    start_prometheus,
    wait_until,
)

RUN_SECONDS = 25
CONFIG = """
endpoints:
  - name: chat
    variants:
      - name: v
        llm:
          max_batch: 16
          kv_cache_tokens: 1000000
          prefill_ms_per_token: 0.02
          decode: {base_ms: 4, per_seq_ms: 0.25}
        faults: {rates: {ThrottlingException: 0.04, ServiceUnavailable: 0.02}}
"""


def exported(url: str) -> set[str]:
    status, body = http_get(url)
    assert status == 200, body[:300]
    return {s.name for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def run_queries(
    prometheus, dashboard: dict, instant_only: bool = False
) -> dict[tuple[str, str], tuple[str, list]]:
    values = resolve_variables(dashboard, prometheus)
    out = {}
    for q in queries(LLM, dashboard):
        if instant_only and not q.instant:
            continue
        expr = substitute(q.expr, values)
        now = time.time()
        out[(q.panel, q.expr)] = (
            expr,
            prometheus.query(expr) if q.instant else prometheus.query_range(expr, now - 30, now, 2),
        )
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("llm-dashboard")
    procs = Procs(tmp)
    try:
        (tmp / "llm.yaml").write_text(CONFIG)
        emulator = start_emulator(procs, "--config", str(tmp / "llm.yaml"))
        metrics_port = free_port()
        prometheus = start_prometheus(
            procs,
            prometheus_config(
                {"locust": f"127.0.0.1:{metrics_port}", "emulator": f"127.0.0.1:{emulator.port}"}
            ),
        )
        locust = procs.start(
            "locust",
            locust_cmd(
                "--autostart",
                "--autoquit",
                "600",
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(free_port()),
                "-u",
                "8",
                "-r",
                "8",
                "--run-time",
                f"{RUN_SECONDS}s",
                "--stop-timeout",
                "10",
                "--endpoint-name",
                "chat",
                "--endpoint-url",
                emulator.url,
                "--region",
                "us-east-1",
                "--api",
                "openai",
                "--prompt-tokens",
                "uniform:min=16,max=256",
                "--output-tokens",
                "32",
                "--goodput",
                "ttft<100ms,tpot<10ms",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(metrics_port),
            ),
            env=aws_env(),
        )
        dashboard = load()[LLM]

        # --- during the run -----------------------------------------------------------------------
        def loaded() -> bool:
            assert locust.alive(), locust.log()[-3000:]
            started = prometheus.value("max(locust_test_start_time_seconds)")
            return (
                bool(started)
                and time.time() - started > 15
                and (
                    prometheus.value('sum(locust_request_failures_total{error_type="ServiceUnavailable"})')
                    or 0
                )
                > 0
            )

        wait_until(loaded, 60, "15 s of LLM load, failures among it, in Prometheus")
        results = run_queries(prometheus, dashboard)
        names = exported(f"http://127.0.0.1:{metrics_port}/metrics") | exported(f"{emulator.url}/metrics")

        # --- at the end ----------------------------------------------------------------------------
        wait_until(
            lambda: prometheus.value('locust_runner_state{state="stopped"}') == 1,
            RUN_SECONDS + 60,
            "the test to stop",
        )
        truth = emulator.stats()["endpoints"]["chat"]["variants"]["v"]
        wait_until(
            lambda: prometheus.value("sum(locust_llm_output_tokens_total)") == truth["llm"]["output_tokens"],
            30,
            "the last requests' tokens in Prometheus",
        )
        yield {
            "results": results,
            "exported": names,
            "truth": truth,
            "final": run_queries(prometheus, dashboard, instant_only=True),
        }
    except BaseException:
        import sys

        sys.stderr.write(procs.dump_logs())
        raise
    finally:
        procs.stop_all()


def test_every_llm_panel_query_returns_data(run):
    results = run["results"]
    assert len(results) >= 35
    empty = [f"{panel}: {expr}" for (panel, _), (expr, rows) in results.items() if not rows]
    assert not empty, "\n".join(empty)
    failures = next(
        rows
        for (panel, expr), (_, rows) in results.items()
        if panel == "Requests by error type" and "error_type" in expr
    )
    assert {row["metric"]["error_type"] for row in failures} == {"ThrottlingException", "ServiceUnavailable"}


def test_llm_panels_use_only_exported_metrics(run):
    exported = run["exported"] | {
        name.removesuffix(s) for name in run["exported"] for s in ("_bucket", "_sum", "_count")
    }
    unknown = {
        (panel, name)
        for (panel, expr) in run["results"]
        for name in metric_names(expr)
        if name not in exported
    }
    assert not unknown, sorted(unknown)


def test_this_test_panels_equal_the_emulators_truth(run):
    def stat(panel: str, legend_expr_part: str) -> float:
        ((rows,),) = [
            [r] for (p, expr), (_, r) in run["final"].items() if p == panel and legend_expr_part in expr
        ]
        (row,) = rows
        return float(row["value"][1])

    truth = run["truth"]
    llm = truth["llm"]
    assert stat("Tokens (this test)", "output_tokens") == llm["output_tokens"] > 0
    assert stat("Tokens (this test)", "input_tokens") == llm["input_tokens"] > 0
    errors = dict(truth["errors"])
    # The OpenAI route's start-up probe (one request, not load, not in Locust's counts): an empty body,
    # refused (400) without generating, unless the emulator's fault injection (6%) answers it first.
    assert set(errors) <= {"HTTPError", "ThrottlingException", "ServiceUnavailable"}
    assert errors.get("HTTPError", 0) <= 1
    assert stat("Requests (this test)", "locust_requests_total") == truth["requests"] - 1
    assert stat("Requests (this test)", "locust_request_failures_total") == sum(errors.values()) - 1 > 0
    assert 0 < stat("Goodput (this test)", "goodput") < 1
