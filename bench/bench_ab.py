#!/usr/bin/env python3
"""The A/B statistics' promises, measured: draws from known lognormal latencies (the emulator's
model, p99 = 3 x the median) into smload's histograms, compared as a run compares its variants.

* false-positive rate and coverage of the 95% intervals with identical variants, per statistic and
  sample size (nominal: 5% and 95%);
* coverage and detection rate with a 10% difference at every quantile (20 ms vs 22 ms medians);
* the planning figure: the power actually reached at the sample size ``required_n`` names for a 5%
  p95 difference (nominal 80%);
* the error-rate interval's false-positive rate (1% failures on both sides);
* the cost: one variant pair's comparison (5 latency rows and the error rate) and report.json
  bytes per name, which is what decides whether numpy/scipy would earn their ~100 MB.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_ab.py [--reps 2000]

Prints Markdown for bench/RESULTS.md. No traffic: pure computation, seeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import time
from statistics import NormalDist

from smload.measure.histogram import Histogram
from smload.results import compare, reports
from smload.results import statistics as st

Z99 = NormalDist().inv_cdf(0.99)
SIGMA = math.log(3) / Z99
STATISTICS = ("p50", "p95", "p99", "mean")


def truth(median: float, statistic: str) -> float:
    if statistic == "mean":
        return median * math.exp(SIGMA * SIGMA / 2)
    return median * math.exp(SIGMA * NormalDist().inv_cdf(float(statistic[1:]) / 100))


def draw(rng: random.Random, median: float, n: int) -> Histogram:
    h, mu = Histogram(), math.log(median)
    for _ in range(n):
        h.record(rng.lognormvariate(mu, SIGMA))
    return h


def diff(a: Histogram, b: Histogram, statistic: str) -> st.Difference:
    if statistic == "mean":
        return st.difference(st.mean(a), st.mean(b))
    q = float(statistic[1:]) / 100
    return st.difference(st.quantile(a, q), st.quantile(b, q))


def simulate(rng: random.Random, reps: int, n: int, median_b: float) -> dict[str, tuple[float, float, int]]:
    """Per statistic: (significant share, coverage share, reps without an interval)."""
    sig, cov, none = ({s: 0 for s in STATISTICS} for _ in range(3))
    for _ in range(reps):
        a, b = draw(rng, 20.0, n), draw(rng, median_b, n)
        for s in STATISTICS:
            d = diff(a, b, s)
            if d.low is None:
                none[s] += 1
                continue
            sig[s] += d.significant
            cov[s] += d.low <= truth(median_b, s) - truth(20.0, s) <= d.high
    return {
        s: (sig[s] / max(1, reps - none[s]), cov[s] / max(1, reps - none[s]), none[s]) for s in STATISTICS
    }


def binomial_band(p: float, reps: int) -> str:
    half = 1.96 * math.sqrt(p * (1 - p) / reps)
    return f"{p - half:.3f}-{p + half:.3f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args(argv)
    reps, rng, started = args.reps, random.Random(2026), time.time()
    out = [
        f"Command ({dt.date.today()}): `flock /tmp/smload-bench.lock .venv/bin/python bench/bench_ab.py "
        f"--reps {reps}`",
        "",
        f"Identical variants (20 ms lognormal, p99 60 ms), {reps} repetitions per size; 95% intervals. "
        f"Binomial noise at this many repetitions: a true 5% reads {binomial_band(0.05, reps)}, a true 95% "
        f"{binomial_band(0.95, reps)}.",
        "",
        "| requests per variant | statistic | false positives | coverage |",
        "|---|---|---|---|",
    ]
    for n in (500, 2000, 5000):
        for s, (sig, cov, none) in simulate(rng, reps, n, 20.0).items():
            out.append(
                f"| {n:,} | {s} | {sig:.3f} | {cov:.3f} |" if not none else f"| {n:,} | {s} | no interval | |"
            )
    out += [
        "",
        f"A 10% difference at every quantile (20 vs 22 ms medians), {reps} repetitions:",
        "",
        "| requests per variant | statistic | detected | coverage |",
        "|---|---|---|---|",
    ]
    for n in (2000, 5000):
        for s, (sig, cov, _none) in simulate(rng, reps, n, 22.0).items():
            out.append(f"| {n:,} | {s} | {sig:.3f} | {cov:.3f} |")

    # the planning figure, from the true spreads (an estimate from a pilot scatters by ~20%)
    def spread(median: float, q: float) -> float:
        x = truth(median, f"p{q * 100:g}")
        return math.sqrt(q * (1 - q)) / (NormalDist().pdf((math.log(x / median)) / SIGMA) / (x * SIGMA))

    planned = st.Difference(0, 0, 0, None, None, None, (spread(20, 0.95), spread(21, 0.95)))
    n = planned.required_n(truth(21, "p95") - truth(20, "p95"), 0.95)
    power_reps = max(200, reps // 4)
    power = (
        sum(diff(draw(rng, 20, n), draw(rng, 21, n), "p95").significant for _ in range(power_reps))
        / power_reps
    )
    out += [
        "",
        f"Power at the planned size: a 5% p95 difference (20 vs 21 ms medians) needs {n:,} requests per "
        f"variant for 80% power (required_n); measured at that size over {power_reps} repetitions: "
        f"**{power:.3f}** (binomial noise {binomial_band(0.8, power_reps)}).",
    ]

    flagged = 0
    for _ in range(reps):
        fa = sum(rng.random() < 0.01 for _ in range(5000))
        fb = sum(rng.random() < 0.01 for _ in range(5000))
        flagged += st.proportion_difference(fa, 5000, fb, 5000).significant
    out += [
        "",
        f"Error rates, 1% on both sides, 5,000 requests each, {reps} repetitions: Newcombe's interval "
        f"flags **{flagged / reps:.3f}** (nominal 0.05).",
    ]

    a, b = draw(rng, 20, 5000), draw(rng, 22, 5000)
    samples = (
        compare.Sample("ep/a", 5000, 50, {"latency": a}),
        compare.Sample("ep/b", 5000, 60, {"latency": b}),
    )
    t0 = time.perf_counter()
    for _ in range(200):
        compare.compare(*samples)
    per_pair_ms = (time.perf_counter() - t0) / 200 * 1000
    entry = reports.NameStats("InvokeEndpoint", "ep/a", 5000, 50, 100.0, a).as_dict()
    hist_bytes = len(json.dumps(entry["histograms"], separators=(",", ":")))
    out += [
        "",
        f"Cost: one pair compared (p50, p95, p99, mean, error rate; 5,000 requests each) takes "
        f"**{per_pair_ms:.2f} ms** in pure Python; the histogram a report.json keeps per name "
        f"({len(a.counts)} buckets) is **{hist_bytes:,} bytes** of JSON.",
        "",
        f"(run time {time.time() - started:.0f} s)",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
