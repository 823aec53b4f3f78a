#!/usr/bin/env python3
"""How fast ``smload autoscaling simulate`` runs: one policy through a diurnal day of traffic (a
sine between 30 and 270 req/s on instances of 160 req/s, one-second steps), best of 3. The
simulation's cost grows with the profile's length and the number of policies: 15 days of CloudWatch
history with two policies is 30 of these days.

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_autoscaling.py
"""

from __future__ import annotations

import math
import time

from smload import scaling
from smload.calibration import simulation

DAY = 86400.0


def main() -> None:
    capacity = simulation.Capacity(
        "AllTraffic",
        160.0,
        4.0,
        simulation.Service(((0.5, 25.0), (0.9, 27.0), (0.95, 28.0), (0.99, 30.0)), 25.5),
    )
    policies = {
        "invocations": scaling.parse_policies(
            {
                "TargetValue": 4800.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.INVOCATIONS_PER_INSTANCE},
            },
            "bench",
        ),
        "concurrency": scaling.parse_policies(
            {
                "TargetValue": 2.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": scaling.CONCURRENCY_PER_MODEL},
            },
            "bench",
        ),
    }

    def rate(t: float) -> float | None:
        return None if t >= DAY else 150.0 + 120.0 * math.sin(t / DAY * 2 * math.pi)

    print("| policy | seconds per simulated day (best of 3) | minutes | scale-outs |")
    print("|---|---|---|---|")
    for name, policy in policies.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = simulation.simulate(capacity, rate, DAY, policy, scaling.Limits(1, 8, 300), 1)
            times.append(time.perf_counter() - started)
        print(f"| {name} | {min(times):.2f} | {result.summary['minutes']} | {result.summary['scale_outs']} |")


if __name__ == "__main__":
    main()
