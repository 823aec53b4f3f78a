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

    # nothing lost: every arrival was sent or dropped, and every request sent reached the emulator;
    # nothing dropped under the ceiling but for an arrival handed out just as the test stopped
    arrivals = report["arrivals"]
    assert arrivals["dropped"] <= 2 and arrivals["arrivals"] == arrivals["sent"] + arrivals["dropped"]
    assert arrivals["sent"] == server["requests"] == results.requests[("InvokeEndpoint", "ep/v1")]
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
    # two workers interleaved (phase-offset), not bunched: two workers sending at the same instants would
    # give gaps of 0 and 2/R alternately (CV 1); what is left above 0 is timing noise (0.3-0.55 measured
    # on this shared machine: bench/RESULTS.md)
    assert server["arrivals"]["interarrival_cv"] < 0.8, server["arrivals"]


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


DEEP_QUEUE = "queue: {max_depth: 100000, max_wait_ms: 600000}"


def test_overload_is_charged_to_latency_as_the_emulator_measured_it(procs, tmp_path, payload):
    """Capacity 200 req/s (1 x 4 slots x 20 ms, a deep queue), 240 req/s offered: the queue grows by
    40 a second. Over the whole run (CI: 8 s; the per-5-s windows of a 30-s run are in bench/RESULTS.md)
    the client's p50 and p99 from the intended start equal the emulator's queue-inclusive server-side
    ones within 2% + 2 ms, and both are far above the 20 ms service time."""
    config = tmp_path / "ep.yaml"
    config.write_text(
        "endpoints:\n  - name: ep\n    variants:\n      - {name: v1, instances: 1, concurrency: 4, "
        f"latency: {{median_ms: 20}}, {DEEP_QUEUE}}}\n"
    )
    emulator = start_emulator(procs, "--config", str(config))
    _, report, _ = open_loop_run(
        emulator, payload, tmp_path, "--arrival-rate", "240", "--max-in-flight", "5000", seconds=8
    )
    server = truth(emulator)["latency_ms"]
    totals = report["totals"]
    assert report["arrivals"]["dropped"] == 0 and totals["requests"] == server["count"]
    for q in (50, 99):
        client, truth_ms = totals[f"p{q}_ms"], server[f"p{q}"]
        assert abs(client - truth_ms) <= 0.02 * truth_ms + 2.0, (q, client, truth_ms)
    # the queue grew through the run: latencies spread from 20 ms to the end's backlog (p99 about 2 x p50)
    assert server["p50"] > 5 * 20 and server["p99"] > 1.5 * server["p50"]


def simulated_p99s(
    rate: float, slots: int, service_s: float, stall: tuple[float, float], seconds: float, runs: int
):
    """p99 latency (ms) of M/D/c runs whose servers all pause during ``stall``: what queueing says."""
    import heapq
    import random

    out = []
    for seed in range(runs):
        rng, free, latencies, t = random.Random(seed), [0.0] * slots, [], 0.0
        while (t := t + rng.expovariate(rate)) < seconds:
            begin = max(t, heapq.heappop(free))
            end = begin + service_s
            if begin < stall[1] and end > stall[0]:
                end = stall[1] + service_s if begin >= stall[0] else end + stall[1] - stall[0]
            heapq.heappush(free, end)
            latencies.append(end - t)
        latencies.sort()
        out.append(latencies[math.ceil(0.99 * len(latencies)) - 1] * 1000)
    return sorted(out)


def test_a_stall_shows_in_the_open_loop_p99_as_queueing_says(procs, tmp_path, payload):
    """Half load (100 req/s on 200) and a 1-s stall of every slot: about 100 arrivals queue behind it,
    the first for a whole second, so the p99 of an 8-s run sits near 0.9 s - where an M/D/4 model of
    the same run puts it (between the 2nd and 98th percentile of 300 simulated runs, 5% + 5 ms)."""
    config = tmp_path / "ep.yaml"
    config.write_text(
        "endpoints:\n  - name: ep\n    variants:\n      - {name: v1, instances: 1, concurrency: 4, "
        f"latency: {{median_ms: 20}}, {DEEP_QUEUE}, faults: {{stalls: [{{from_s: 4, to_s: 5}}]}}}}\n"
    )
    emulator = start_emulator(procs, "--config", str(config))
    # the emulator's clock starts at its last reset: reset just before the run, the stall comes 4 s later
    emulator.reset()
    _, report, _ = open_loop_run(
        emulator, payload, tmp_path, "--arrival-rate", "100", "--max-in-flight", "2000", seconds=9
    )
    expected = simulated_p99s(100, 4, 0.020, (4.0, 5.0), 8.0, 300)
    low, high = expected[6] * 0.95 - 5, expected[-7] * 1.05 + 5
    measured = report["totals"]["p99_ms"]
    assert low <= measured <= high, (measured, low, high)
    assert truth(emulator)["latency_ms"]["max"] > 900  # the stall happened at the emulator


def test_a_custom_locustfile_offers_its_own_task_at_its_own_rate(procs, tmp_path, payload):
    """A locustfile's own task (two invocations per arrival: a stream, then another variant) at the
    rate of its own RateShape (60 then 150 req/s, 3 s each, then the end): every arrival ran the task
    once, the stream's TTFB is recorded, and the emulator saw the rate change."""
    from testkit.support import REPO

    config = tmp_path / "ep.yaml"
    config.write_text(
        "endpoints:\n  - name: ep\n    variants:\n"
        "      - {name: va, weight: 1, instances: 4, concurrency: 16, latency: {median_ms: 2}}\n"
        "      - {name: vb, weight: 1, instances: 4, concurrency: 16, latency: {median_ms: 2}}\n"
    )
    emulator = start_emulator(procs, "--config", str(config))
    report_dir = tmp_path / "report"
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
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
        "--arrival",
        "constant",
        "--max-in-flight",
        "40",
        "--report",
        str(report_dir),
        *distributed_args(),
        locustfile=REPO / "tests" / "locustfiles" / "open_loop_custom.py",
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((report_dir / "report.json").read_text())
    arrivals = report["arrivals"]
    variants = emulator.stats()["endpoints"]["ep"]["variants"]
    assert arrivals["dropped"] <= 2 and arrivals["arrivals"] == arrivals["sent"] + arrivals["dropped"]
    # every arrival's task made its first invocation; a task the end of the test caught between its two
    # invocations did not make the second (at most one per executor)
    assert arrivals["sent"] == variants["va"]["requests"]
    assert 0 <= variants["va"]["requests"] - variants["vb"]["requests"] <= 40
    # what the shape asked for while arrivals ran (they start once the executors are spawned, a part of
    # the first second), constant arrivals: exact but for the edges
    offered = arrivals["target_rate"] * arrivals["seconds"]
    assert abs(arrivals["sent"] - offered) <= 0.02 * offered + 2, arrivals
    assert 3 * 150 <= arrivals["sent"] <= 3 * 60 + 3 * 150, arrivals  # the first stage, less the start-up
    names = {n["name"]: n for n in report["names"]}
    assert (
        names["ep/va"]["type"] == "InvokeEndpointWithResponseStream"
        and names["ep/va"]["ttfb_ms"]["count"] > 0
    )
    # the first invocation of each arrival carries the schedule lag, the second is timed from its send
    assert (
        names["ep/va"]["schedule_lag_ms"]["count"] == arrivals["sent"]
        and "schedule_lag_ms" not in names["ep/vb"]
    )
    seconds = full_seconds(variants["va"]["arrivals"]["per_second"])
    assert max(seconds) >= 140 and min(seconds) <= 70, seconds


def test_a_rate_profile_ramps_and_ends_the_test(procs, tmp_path, payload):
    """--rate-profile: 2 s at 50 req/s, a linear ramp to 250 over 4 s, 2 s at 250, then the end of the
    test (no --run-time). The emulator sees the rate climb, and the report's target is the profile's."""
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "stages:\n  - {duration: 2s, rate: 50}\n  - {duration: 4s, rate: 250, ramp: linear}\n"
        "  - {duration: 2s, rate: 250}\n"
    )
    emulator = start_emulator(
        procs, "--endpoint", "ep", "--variant", "name=v1,instances=4,concurrency=16,latency_ms=2"
    )
    report_dir = tmp_path / "report"
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
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
        "--rate-profile",
        str(profile),
        "--arrival",
        "constant",
        "--report",
        str(report_dir),
        *distributed_args(),
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    arrivals = json.loads((report_dir / "report.json").read_text())["arrivals"]
    per_second = full_seconds(truth(emulator)["arrivals"]["per_second"])
    assert per_second[0] <= 80 and max(per_second) >= 220, per_second  # 50 at first, 250 at the end
    assert 60 < arrivals["target_rate"] < 200 and arrivals["seconds"] < 10, arrivals
    offered = arrivals["target_rate"] * arrivals["seconds"]
    assert abs(arrivals["sent"] - offered) <= 0.03 * offered + 3, arrivals
