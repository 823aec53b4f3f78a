import math
import random

import pytest

from smload.measure.histogram import RELATIVE_ERROR, Histogram


def exact_quantile(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_relative_error(seed):
    rng = random.Random(seed)
    values = [rng.lognormvariate(3.0, 0.8) for _ in range(20_000)]
    hist = Histogram()
    for v in values:
        hist.record(v)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = exact_quantile(values, q)
        assert hist.quantile(q) == pytest.approx(exact, rel=RELATIVE_ERROR * 1.0001)
    assert hist.count == len(values)
    assert hist.mean == pytest.approx(sum(values) / len(values))
    assert hist.min == min(values) and hist.max == max(values)


def test_merge_of_parts_equals_whole_and_survives_the_wire():
    rng = random.Random(7)
    values = [rng.expovariate(1 / 40) for _ in range(5_000)]
    whole, parts = Histogram(), [Histogram() for _ in range(4)]
    for i, v in enumerate(values):
        whole.record(v)
        parts[i % 4].record(v)
    merged = Histogram()
    for part in parts:
        merged.merge(Histogram.from_wire(part.to_wire()))
    assert merged.counts == whole.counts
    assert merged.count == whole.count
    assert merged.sum == pytest.approx(whole.sum)
    assert (merged.min, merged.max) == (whole.min, whole.max)


def test_since_gives_the_window_only():
    hist = Histogram()
    for _ in range(100):
        hist.record(5.0)
    before = hist.copy()
    for _ in range(300):
        hist.record(50.0)
    window = hist.since(before)
    assert window.count == 300
    assert window.quantile(0.01) == pytest.approx(50.0, rel=RELATIVE_ERROR)
    assert window.mean == pytest.approx(50.0)


def test_cumulative_buckets_for_prometheus():
    hist = Histogram()
    for v in (0.5, 3.0, 3.0, 20.0, 250.0, 9_000.0):
        hist.record(v)
    assert hist.cumulative([1.0, 10.0, 100.0, 1000.0]) == [1, 3, 4, 5]


def test_empty_and_tiny_values():
    hist = Histogram()
    assert hist.quantile(0.99) == 0.0
    assert Histogram.from_wire(hist.to_wire()).count == 0
    hist.record(0.0)
    assert hist.count == 1 and hist.quantile(0.5) == 0.0
