"""Unit checks of the bucket layout and the hand-rendered exposition (parsed back with
prometheus_client's parser; promtool lints them in tests/integration/test_exporter_prometheus.py)."""

import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smload.exporter.buckets import BOUND_INDICES, BOUNDS_SECONDS, LE_LABELS, cumulative_counts
from smload.exporter.exposition import ERROR_LABELS, OVERFLOW_NAME, RequestMetrics, error_label
from smload.measure.histogram import Histogram
from smload.measure.series import Series
from smload.record import Identity


def series(samples, failures=None, response_bytes=0):
    s = Series()
    for ms in samples:
        s.requests += 1
        s.histogram.record(ms)
    s.failures.update(failures or {})
    s.response_bytes = response_bytes
    return s


def parse(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_layout_is_fixed_increasing_and_within_the_tolerance_everywhere():
    assert len(LE_LABELS) == 459 and LE_LABELS[-1] == "+Inf"
    assert BOUND_INDICES == sorted(set(BOUND_INDICES))
    for low, high in zip(BOUNDS_SECONDS, BOUNDS_SECONDS[1:], strict=False):
        if high > 60:
            break  # the long-stream tail is coarse on purpose
        assert high - low <= max(0.0005, 0.0203 * low) + 1e-12, (low, high)


def test_cumulative_counts_are_exact_at_every_bound():
    rng = random.Random(3)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)] + [0.0, 0.2, 700_000.0]
    hist = Histogram()
    for v in values:
        hist.record(v)
    counts = cumulative_counts(hist)
    assert counts[-1] == len(values)
    for bound, n in zip(BOUNDS_SECONDS, counts, strict=False):
        # exact up to values within float rounding of a bound (none here)
        assert n == sum(1 for v in values if v <= bound * 1000 * (1 + 1e-12)), bound


def test_rendered_families_parse_back_with_the_right_values():
    lifetime = {
        Identity("InvokeEndpoint", "ep/a"): series(
            [10.0, 20.0, 20.0, 3000.0], {"ModelError(500)": 2, "Timeout": 1}, 900
        ),
        Identity("InvokeEndpoint", 'odd "name"\\ with\nnewline'): series([1.0]),
    }
    samples = parse(RequestMetrics().render(lifetime))
    a = (("name", "ep/a"), ("request_type", "InvokeEndpoint"))
    assert samples[("locust_requests_total", a)] == 4
    assert samples[("locust_response_bytes_total", a)] == 900
    assert samples[("locust_request_failures_total", tuple(sorted(a + (("error_type", "ModelError"),))))] == 2
    assert samples[("locust_request_failures_total", tuple(sorted(a + (("error_type", "Timeout"),))))] == 1
    assert (
        samples[("locust_request_failures_total", tuple(sorted(a + (("error_type", "AccessDenied"),))))] == 0
    )
    assert samples[("locust_request_duration_seconds_count", a)] == 4
    assert samples[("locust_request_duration_seconds_sum", a)] == pytest.approx(3.05)
    assert samples[("locust_request_duration_seconds_bucket", tuple(sorted(a + (("le", "+Inf"),))))] == 4
    buckets = {
        dict(labels)["le"]: v
        for (name, labels), v in samples.items()
        if name == "locust_request_duration_seconds_bucket" and dict(labels)["name"] == "ep/a"
    }
    assert len(buckets) == len(LE_LABELS)
    assert buckets["0.0200875"] == 3 and buckets["2.98175"] == 3 and buckets["3.04199"] == 4
    odd = [
        labels
        for (name, labels) in samples
        if name == "locust_requests_total" and dict(labels)["name"] != "ep/a"
    ]
    assert dict(odd[0])["name"] == 'odd "name"\\ with\nnewline'


def test_error_labels_come_from_the_closed_set():
    assert error_label("ModelError(424)") == "ModelError"
    assert error_label("HTTPError(418)") == "HTTPError"
    assert error_label("Other") == "Other"
    assert error_label("SomethingElse: with a message") == "Other"
    assert "Other" in ERROR_LABELS and len(ERROR_LABELS) == 12


def test_names_beyond_the_cap_are_summed_and_counts_still_only_grow():
    metrics = RequestMetrics(max_names=2)
    lifetime = {Identity("InvokeEndpoint", f"ep/v{i}"): series([5.0] * (i + 1)) for i in range(2)}
    first = parse(metrics.render(lifetime))
    lifetime[Identity("InvokeEndpoint", "ep/v2")] = series([5.0] * 7)
    lifetime[Identity("HTTP", "late")] = series([5.0] * 3)
    second = parse(metrics.render(lifetime))
    names = {dict(labels)["name"] for (name, labels) in second if name == "locust_requests_total"}
    assert names == {"ep/v0", "ep/v1", OVERFLOW_NAME}
    other = (("name", OVERFLOW_NAME), ("request_type", "InvokeEndpoint"))
    assert second[("locust_requests_total", other)] == 7
    assert second[("locust_requests_total", (("name", OVERFLOW_NAME), ("request_type", "HTTP")))] == 3
    for key, value in first.items():
        assert second[key] >= value
    # a name that once had its own series keeps it
    lifetime[Identity("InvokeEndpoint", "ep/v0")].merge(series([1.0]))
    assert (
        parse(metrics.render(lifetime))[
            ("locust_requests_total", (("name", "ep/v0"), ("request_type", "InvokeEndpoint")))
        ]
        == 2
    )
