"""What verify observes, in the simulation's terms (smload.calibration.observed), and the traffic
profiles it compresses and shifts (smload.calibration.traffic): pure functions, by hand."""

import json

import pytest

from smload.calibration import observed, traffic
from smload.usage import UsageError


def test_activities_from_describe_endpoint_polls():
    polls = [
        (0, 1, 1),
        (10, 1, 1),
        (20, 1, 3),
        (30, 1, 3),
        (140, 3, 3),
        (150, 3, 3),
        (900, 3, 1),
        (910, 1, 1),
    ]
    events = observed.events_from_polls(polls)
    assert [(e["time"], e["from"], e["to"], e["ready"]) for e in events] == [
        (20, 1, 3, 140),
        (900, 3, 1, 910),
    ]  # drained by 910
    assert events[0]["decided_after"] == 10  # decided between the two polls


def test_instance_hours_bill_starting_instances():
    polls = [(0, 1, 1), (1800, 1, 3), (3600, 3, 3)]
    # 1 for half an hour, then 3 (starting ones billed) for the next half and the one after
    assert observed.instance_hours(polls, 7200) == pytest.approx(0.5 + 1.5 + 3)


def test_minutes_from_the_emulators_windows():
    timeline = {
        "t": [10, 20, 30, 40, 50, 60, 70, 80],
        "arrivals": [1, 1, 1, 1, 1, 1, 5, 5],
        "errors": [0, 0, 1, 0, 0, 0, 2, 0],
        "instances": [1, 1, 1, 1, 1, 1, 2, 2],
        "p50_ms": [5, 5, 5, 5, 5, 5, 6, 7],
        "p99_ms": [9, 9, 30, 9, 9, 9, None, 12],
    }
    minutes = observed.minutes_from_windows(timeline, offset=0, duration=120)
    assert [(m["t"], m["requests"], m["errors"], m["p99_ms"], m["instances"]) for m in minutes] == [
        (0.0, 6, 1, 30, 1),
        (60.0, 10, 2, 12, 2),
    ]
    # shifted: the profile started 20 s into the emulator's clock
    assert [m["requests"] for m in observed.minutes_from_windows(timeline, offset=20, duration=120)] == [
        4 + 10
    ]


def test_slo_minutes_and_summary():
    minutes = [
        {"t": 0.0, "requests": 100, "errors": 0, "p99_ms": 50, "instances": 1},
        {"t": 60.0, "requests": 100, "errors": 5, "p99_ms": 50, "instances": 1},
        {"t": 120.0, "requests": 100, "errors": 0, "p99_ms": 500, "instances": 2},
    ]
    from smload.results.checks import parse_all

    observed.judge(minutes, tuple(parse_all("p99<300ms", "--slo")), 0.01)
    assert [m["slo_ok"] for m in minutes] == [True, False, False]
    summary = observed.summary(minutes, [{"from": 1, "to": 2}], 0.5, 2.0)
    assert (
        summary["slo_violating_minutes"],
        summary["errors"],
        summary["requests"],
        summary["cost"],
        summary["max_instances"],
        summary["scale_outs"],
    ) == (2, 5, 300, 1.0, 2, 1)


def test_scale_out_lag_from_the_moment_the_load_outgrew_the_instances():
    rate = lambda t: 240.0 if 300 <= t < 900 else 80.0  # noqa: E731
    events = [
        {"time": 480, "from": 1, "to": 2, "ready": 600},
        {"time": 1800, "from": 2, "to": 1, "ready": 1800},
    ]
    (lag,) = observed.lags(events, rate, 160.0)
    assert (lag["onset"], lag["detect_s"], lag["lag_s"]) == (300, 180, 300)


def test_changes_paired_and_judged_within_one_period():
    seen = [
        {"time": 490, "from": 1, "to": 2, "ready": 610},
        {"time": 1900, "from": 2, "to": 1, "ready": 1900},
    ]
    predicted = [
        {"time": 480, "from": 1, "to": 2, "ready": 600},
        {"time": 1800, "from": 2, "to": 1, "ready": 1800},
    ]
    rows = observed.compare(seen, predicted, 60)
    assert [r["within_period"] for r in rows] == [True, False]  # 100 s apart: more than a period
    assert rows[0]["decision_difference_s"] == 10
    assert observed.compare(seen[:1], predicted, 60)[1]["within_period"] is False  # a change not observed


def test_profiles_in_production_time(tmp_path):
    series = tmp_path / "series.yaml"
    series.write_text("per_minute: [600, 6000]\ntime_scale: 60\n")
    load = traffic.from_file(str(series))
    assert (
        load.duration_s == 120 and load.rate(30) == pytest.approx(10) and load.rate(90) == pytest.approx(100)
    )
    assert "undone" in load.note
    stages = tmp_path / "stages.json"
    stages.write_text(
        json.dumps({"stages": [{"duration": "5m", "rate": 80}, {"duration": "10m", "rate": 240}]})
    )
    load = traffic.from_file(str(stages))
    assert load.describe()["requests"] == 80 * 300 + 240 * 600
    assert load.compressed(60)["stages"] == [
        {"duration": "5.000000s", "rate": 80.0, "ramp": "step"},
        {"duration": "10.000000s", "rate": 240.0, "ramp": "step"},
    ]
    shifted = load.shifted(30)
    assert shifted.rate(10) == 0 and shifted.rate(40) == 80 and shifted.duration_s == 930


@pytest.mark.parametrize(
    "text, message",
    [
        ("stages:\n  - {duration: 1m, rate: -1}\n", "the rate must be between 0"),
        ("stages:\n  - {duration: 1m, rate: 0}\n", "offers no traffic"),
        ("stages: [\n", "is not valid YAML"),
        ("steps: []\n", "unknown key(s) steps"),
    ],
)
def test_bad_profiles(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        traffic.from_file(str(path))
    assert str(caught.value).startswith("--profile: ") and message in str(caught.value)
