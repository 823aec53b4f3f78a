"""The emulator's open-loop truth and the stall fault as pure code: arrivals per second and the
inter-arrival CV (stats), when a request that meets a stall finishes (capacity), the stall's config."""

from __future__ import annotations

import random

import pytest

from smload.emulator import config as cfg
from smload.emulator.capacity import VariantRuntime
from smload.emulator.stats import VariantStats
from smload.usage import UsageError


def _variant(tmp_path, faults: str) -> cfg.Variant:
    path = tmp_path / "c.yaml"
    path.write_text(
        "endpoints:\n  - name: ep\n    variants:\n      - name: v1\n        latency: {median_ms: 20}\n"
        f"        faults: {faults}\n"
    )
    return cfg.load_file(path).endpoints[0].variants[0]


def test_arrivals_per_second_and_the_cv_of_their_gaps():
    stats = VariantStats(4)
    rng, t = random.Random(5), 0.0
    for _ in range(20_000):
        t += rng.expovariate(1000)
        stats.arrived(t)
    assert sum(stats.per_second) == 20_000 and len(stats.per_second) == int(t) + 1
    assert stats.interarrival_cv == pytest.approx(1.0, abs=0.03)
    even = VariantStats(4)
    for i in range(1000):
        even.arrived(i * 0.01)
    assert even.per_second == [100] * 10 and even.interarrival_cv == pytest.approx(0.0, abs=1e-6)
    assert even.to_json()["arrivals"]["per_second"] == [100] * 10
    even.reset()
    assert even.to_json()["arrivals"] == {"per_second": [], "interarrival_cv": None}


def test_a_stall_pauses_the_work_of_every_slot(tmp_path):
    variant = VariantRuntime(
        "ep",
        _variant(tmp_path, "{stalls: [{from_s: 10, to_s: 12}, {from_s: 20, to_s: 21}]}"),
        VariantStats(1),
    )
    assert variant.finish(5.0, 1.0) == 6.0  # before it: untouched
    assert variant.finish(9.5, 1.0) == pytest.approx(12.5)  # 0.5 s done, paused 2 s, 0.5 s after
    assert variant.finish(11.0, 0.02) == pytest.approx(12.02)  # starts inside: begins at its end
    assert variant.finish(12.0, 0.5) == 12.5  # after it
    assert variant.finish(9.0, 12.0) == pytest.approx(24.0)  # meets both: 2 s + 1 s later


def test_a_bad_stall_names_its_problem(tmp_path):
    with pytest.raises(UsageError, match=r"stalls\[0\]\.to_s"):
        _variant(tmp_path, "{stalls: [{from_s: 3, to_s: 2}]}")
    with pytest.raises(UsageError, match="stalls"):
        _variant(tmp_path, "{stalls: {from_s: 3}}")
