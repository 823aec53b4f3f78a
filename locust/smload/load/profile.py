"""Rate profiles (``--rate-profile FILE``): the total arrival rate over time, as stages with step or
linear ramps, or as a per-minute series (CloudWatch ``Invocations``, Sum per minute) replayed with a
time scale. YAML or JSON::

    stages:                       # each holds for its duration; ramp: linear starts from the previous rate
      - {duration: 30s, rate: 50}
      - {duration: 1m, rate: 400, ramp: linear}
      - {duration: 2m, rate: 400}

    per_minute: [1200, 1800, 9000, 4000]   # requests per minute, one value a minute
    # per_minute_file: invocations.csv     # or a file: the last number of each line (a header is skipped)
    time_scale: 60                          # replay a minute in 60 / 60 = 1 s (default 1: real time)
    ramp: linear                            # between two minutes (default step)

The test ends with the profile. Pure code: the master evaluates :meth:`Profile.rate` once a second
(:mod:`.shape`); a file must exist where the master runs (the workers only receive rates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEP, LINEAR = "step", "linear"
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class Stage:
    duration_s: float
    rate: float  # at the stage's end (and throughout, for a step)
    ramp: str = STEP


@dataclass(frozen=True)
class Profile:
    stages: tuple[Stage, ...]
    start_rate: float = 0.0  # where the first linear ramp starts

    @property
    def duration_s(self) -> float:
        return sum(stage.duration_s for stage in self.stages)

    @property
    def peak(self) -> float:
        return max([stage.rate for stage in self.stages] + [self.start_rate])

    def rate(self, t: float) -> float | None:
        """The total rate ``t`` seconds into the test; None once the profile has ended."""
        if t < 0:
            t = 0.0
        begin, previous = 0.0, self.start_rate
        for stage in self.stages:
            end = begin + stage.duration_s
            if t < end:
                if stage.ramp == LINEAR and stage.duration_s > 0:
                    return previous + (stage.rate - previous) * (t - begin) / stage.duration_s
                return stage.rate
            begin, previous = end, stage.rate
        return None


def duration(value: Any, where: str) -> float:
    """``30``, ``30s``, ``1.5m``, ``2h``, ``500ms`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if not match:
            raise ValueError(f"{where}: {value!r} is not a duration like 30s, 2m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{where}: a duration must be positive, not {value!r}")
    return seconds


def _rate(value: Any, where: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a rate (requests per second)") from None
    if not 0 <= rate < 1e7:
        raise ValueError(
            f"{where}: the rate must be between 0 and 10,000,000 requests per second, not {value!r}"
        )
    return rate


def _ramp(value: Any, where: str) -> str:
    ramp = str(value or STEP).strip().lower()
    if ramp not in (STEP, LINEAR):
        raise ValueError(f"{where}: ramp {value!r} is not step or linear")
    return ramp


def from_mapping(data: Any, base: Path = Path(".")) -> Profile:
    """A profile from the parsed file; ValueError naming the first problem."""
    if not isinstance(data, dict):
        raise ValueError(
            "the profile must be a mapping with 'stages' or 'per_minute' (see docs/open-loop.md)"
        )
    known = {"stages", "per_minute", "per_minute_file", "time_scale", "ramp", "start_rate"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}: use {', '.join(sorted(known))}")
    start = _rate(data.get("start_rate", 0), "start_rate")
    if "stages" in data:
        if "per_minute" in data or "per_minute_file" in data:
            raise ValueError("give either 'stages' or a per-minute series, not both")
        stages = data["stages"]
        if not isinstance(stages, list) or not stages:
            raise ValueError("'stages' must be a non-empty list of {duration, rate[, ramp]}")
        out = []
        for i, stage in enumerate(stages, 1):
            where = f"stage {i}"
            if not isinstance(stage, dict) or "duration" not in stage or "rate" not in stage:
                raise ValueError(f"{where}: give duration and rate, e.g. {{duration: 30s, rate: 100}}")
            extra = sorted(set(stage) - {"duration", "rate", "ramp"})
            if extra:
                raise ValueError(f"{where}: unknown key(s) {', '.join(extra)}")
            out.append(
                Stage(
                    duration(stage["duration"], where),
                    _rate(stage["rate"], where),
                    _ramp(stage.get("ramp"), where),
                )
            )
        return Profile(tuple(out), start)
    if "per_minute" in data or "per_minute_file" in data:
        values = data.get("per_minute")
        if values is None:
            values = _series_file(base / str(data["per_minute_file"]))
        if not isinstance(values, list) or not values:
            raise ValueError("'per_minute' must be a non-empty list of requests per minute")
        scale = float(data.get("time_scale", 1))
        if not 0 < scale <= 3600:
            raise ValueError(f"time_scale must be above 0 and at most 3600, not {data.get('time_scale')!r}")
        ramp = _ramp(data.get("ramp"), "ramp")
        minute = 60.0 / scale
        per_second = [_rate(v, f"minute {i}") * scale / 60.0 for i, v in enumerate(values, 1)]
        if ramp == LINEAR:  # each minute ramps from the previous minute's rate to its own
            stages = [Stage(minute, rate, LINEAR) for rate in per_second]
            return Profile(tuple(stages), per_second[0])
        return Profile(tuple(Stage(minute, rate) for rate in per_second), start)
    raise ValueError("the profile needs 'stages' or 'per_minute' (see docs/open-loop.md)")


def _series_file(path: Path) -> list[float]:
    """The last number of each line of a CSV (CloudWatch's export: timestamp,value); a header is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ValueError(f"per_minute_file {str(path)!r}: {err.strerror or err}") from None
    values = []
    for number, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.replace(";", ",").split(",") if c.strip()]
        if not cells:
            continue
        try:
            values.append(float(cells[-1]))
        except ValueError:
            if values or number > 1:
                raise ValueError(f"per_minute_file line {number}: {cells[-1]!r} is not a number") from None
    return values


def load(path: str) -> Profile:
    """Read and check a profile file (YAML or JSON); ValueError naming the problem."""
    return from_mapping(read(path), Path(path).parent)


def read(path: str) -> Any:
    """The parsed content of a profile file (YAML or JSON); ValueError (one line) when it cannot be
    read or parsed. Also what ``smload autoscaling`` reads its traffic from."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - any parse error is the user's file
        kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
        raise ValueError(f"{path} is not valid {kind}: {' '.join(str(err).split())[:200]}") from None
