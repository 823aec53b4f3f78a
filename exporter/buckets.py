"""The ``le`` bounds of ``locust_request_duration_seconds``, fixed for the life of the process.

The bar: ``histogram_quantile`` over a test must agree with the endpoint's own percentiles within
2% + 1 ms. PromQL interpolates linearly inside the bucket a quantile falls in, so for a latency
that barely varies (one model, one instance type: a near-constant latency is common) the answer can
be anywhere in that bucket: a bucket must be no wider than the tolerance at its latency. Hence:

* every bound is a bucket boundary of the workers' :class:`~smload.histogram.Histogram`
  (``gamma**i``), so the count at each ``le`` is exact, not an estimate from representative values;
* up to 25 ms, steps of about 0.5 ms (half of the 1 ms absolute tolerance, the other half left for
  the client's own overhead); from there to 60 s (SageMaker's invocation timeout), one step of the
  workers' histogram, 2.02%; above 60 s, a few coarse bounds for long streams;
* 458 bounds (plus ``+Inf``) per ``(request_type, name)``, a bounded cost: the exporter caps the
  number of names (``--metrics-max-names``).

Coarser buckets (the usual dozen) are fine for a smooth, wide distribution, but put p99 of a
constant 100 ms latency anywhere up to 250 ms; measured, not assumed:
``tests/integration/test_exporter_buckets.py``.
"""

from __future__ import annotations

from bisect import bisect_left

from smload.measure.histogram import _GAMMA, Histogram, bucket_index

ABSOLUTE_STEP_MS = 0.5
FIRST_MS = 0.5
FINE_UNTIL_MS = 60_000.0
TAIL_MS = (90_000.0, 120_000.0, 180_000.0, 300_000.0, 600_000.0)


def _layout() -> list[int]:
    """Histogram bucket indices whose upper boundaries are the ``le`` bounds."""
    indices = [bucket_index(FIRST_MS)]
    while _GAMMA ** indices[-1] < FINE_UNTIL_MS:
        here = _GAMMA ** indices[-1]
        step = max(ABSOLUTE_STEP_MS, (_GAMMA - 1.0) * here) * (1 + 1e-9)
        nxt = indices[-1] + 1
        while _GAMMA ** (nxt + 1) - here <= step:
            nxt += 1
        indices.append(nxt)
    indices += [bucket_index(ms) for ms in TAIL_MS]
    return indices


BOUND_INDICES: list[int] = _layout()
BOUNDS_SECONDS: list[float] = [_GAMMA**i / 1000.0 for i in BOUND_INDICES]
LE_LABELS: list[str] = [format(s, ".6g") for s in BOUNDS_SECONDS] + ["+Inf"]
assert len(set(LE_LABELS)) == len(LE_LABELS), "two bounds print alike"

_position: dict[int, int] = {}  # histogram bucket index -> first bound that holds it (cache)


def cumulative_counts(histogram: Histogram) -> list[int]:
    """The count at every ``le`` (cumulative, ``+Inf`` last = the histogram's count). Exact: a
    histogram bucket lies wholly below or wholly above each bound."""
    per_bound = [0] * len(LE_LABELS)
    for index, n in histogram.counts.items():
        position = _position.get(index)
        if position is None:
            position = _position[index] = bisect_left(BOUND_INDICES, index)
        per_bound[position] += n
    running = 0
    for i, n in enumerate(per_bound):
        running += n
        per_bound[i] = running
    return per_bound
