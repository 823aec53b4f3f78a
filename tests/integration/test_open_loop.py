"""Open loop with real processes: a Locust master and two workers offer an arrival rate to the
emulator, and the emulator's own arrival record (``/_emulator/stats`` ``arrivals``) is the truth.

CI runs shortened versions of the acceptance tests of issue 11 (seconds, not a minute): the
tolerances are the same statistical bounds (3 sigma of a Poisson count, the coefficient of
variation's own sampling error) computed for the shorter runs, so they are as strict relative to
their noise; the full 60-s figures are in bench/RESULTS.md (bench/bench_open_loop.py).
"""

from __future__ import annotations

import json
import math

import pytest
from testkit.support import distributed_args, locust_results, run_locust, start_emulator


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "body.json"
    path.write_text('{"inputs": [1, 2, 3]}')
    return path


def open_loop_run(emulator, payload, tmp_path, *args: str, seconds: int = 6, workers: int = 2, code: int = 0):
    report = tmp_path / "report"
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--endpoint-name",
        "ep",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(payload),
        "--json",
        "--exit-code-on-error",
        "0",
        "--report",
        str(report),
        *distributed_args(workers),
        *args,
    )
    assert result.returncode == code, result.stdout[-3000:] + result.stderr[-6000:]
    return locust_results(result), json.loads((report / "report.json").read_text()), result


def truth(emulator) -> dict:
    return emulator.stats()["endpoints"]["ep"]["variants"]["v1"]


def full_seconds(per_second: list[int]) -> list[int]:
    """The seconds wholly inside the run: after the first one with arrivals, before the last one."""
    busy = [i for i, n in enumerate(per_second) if n]
    return per_second[busy[0] + 1 : busy[-1]]


def test_poisson_rate_is_the_target_at_the_emulator(procs, tmp_path, payload):
    """200 req/s for 20 s (4,000 gaps: the CV's standard error is about 1/sqrt(4000) = 0.016, so
    0.95-1.05 is 3 of it). A lower rate than the bench's 1,000 req/s: on a shared 2-core machine the
    operating system delays a worker now and then by a few ms, which adds to the variance of short
    gaps (bench/RESULTS.md shows the effect at 1,000 req/s)."""
    rate = 200
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=8,concurrency=64,latency_ms=0"
    )
    results, report, _ = open_loop_run(
        emulator, payload, tmp_path, "--arrival-rate", str(rate), "--arrival-seed", "7", seconds=21
    )
    server = truth(emulator)
    seconds = full_seconds(server["arrivals"]["per_second"])
    assert len(seconds) >= 18, server["arrivals"]
    count, expected = sum(seconds), rate * len(seconds)
    assert abs(count - expected) < 3 * math.sqrt(expected), (count, expected, seconds)
    # the CV of n exponential gaps has a standard error of about 1/sqrt(n): 0.95-1.05 is > 3 of it here
    gaps = server["requests"] - 1
    assert gaps > 3000
    assert 0.95 <= server["arrivals"]["interarrival_cv"] <= 1.05, server["arrivals"]["interarrival_cv"]

    # nothing lost, nothing dropped: every arrival was sent, and every request reached the emulator
    arrivals = report["arrivals"]
    assert arrivals["dropped"] == 0
    assert (
        arrivals["arrivals"]
        == arrivals["sent"]
        == server["requests"]
        == results.requests[("InvokeEndpoint", "ep/v1")]
    )
    assert arrivals["target_rate"] == pytest.approx(rate)
    assert (
        abs(arrivals["achieved_rate"] - rate)
        < 3 * math.sqrt(rate * arrivals["seconds"]) / arrivals["seconds"]
    )
    assert arrivals["schedule_lag_ms"]["count"] == server["requests"]


def test_constant_arrivals_are_even_every_second(procs, tmp_path, payload):
    rate = 400
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=8,concurrency=64,latency_ms=0"
    )
    open_loop_run(
        emulator, payload, tmp_path, "--arrival-rate", str(rate), "--arrival", "constant", seconds=7
    )
    server = truth(emulator)
    seconds = full_seconds(server["arrivals"]["per_second"])
    assert len(seconds) >= 4, server["arrivals"]
    assert all(abs(n - rate) <= 0.02 * rate for n in seconds), seconds
    # two workers interleaved (phase-offset), not bunched: far more even than Poisson (CV 1)
    assert server["arrivals"]["interarrival_cv"] < 0.5, server["arrivals"]


def test_dropped_arrivals_are_counted_exactly(procs, tmp_path, payload):
    """A ceiling below rate x latency: 300 req/s at 20 ms (capacity 4 slots: 200 req/s) with 10
    requests in flight at most. scheduled = sent + dropped, sent = the emulator's count, exactly."""
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=1,concurrency=4,latency_ms=20"
    )
    results, report, run = open_loop_run(
        emulator,
        payload,
        tmp_path,
        "--arrival-rate",
        "300",
        "--max-in-flight",
        "10",
        "--check",
        "dropped<1%",
        "--check",
        "achieved_rate>=1",
        seconds=6,
        code=3,
    )
    arrivals = report["arrivals"]
    server = truth(emulator)
    assert arrivals["dropped"] > 0.2 * arrivals["arrivals"], arrivals
    assert arrivals["arrivals"] == arrivals["sent"] + arrivals["dropped"]
    assert arrivals["sent"] == server["requests"] == results.requests[("InvokeEndpoint", "ep/v1")]
    # the summary says so, and the dropped check failed on the same figure
    summary = run.stderr[run.stderr.index("SageMaker load test summary") :]
    assert f"dropped {arrivals['dropped']:,}" in summary
    checks = {c["metric"]: c for c in report["checks"]}
    assert not checks["dropped"]["passed"]
    assert checks["dropped"]["value"] == pytest.approx(arrivals["dropped"] / arrivals["arrivals"])
    assert checks["achieved_rate"]["passed"]
