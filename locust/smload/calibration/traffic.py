"""The traffic an autoscaling strategy is judged on: a rate profile in the open-loop format
(``smload.load.profile``: stages with step or linear ramps, or a per-minute series), read in
*production time*, or the endpoint's own ``Invocations`` history from CloudWatch.

A per-minute series replayed faster (its ``time_scale``) keeps its counts and multiplies its rates,
which is what an open-loop test of the series wants and not what a scaling policy sees: here the
series is taken at its real pace, and ``verify`` compresses time its own way (the emulator's
``time_scale``: shorter stages at the same rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smload.load import profile as profiles
from smload.usage import UsageError

CLOUDWATCH_DAYS = 15  # CloudWatch keeps one-minute datapoints for 15 days


@dataclass(frozen=True)
class Traffic:
    profile: profiles.Profile  # in production time
    source: str
    note: str = ""

    @property
    def duration_s(self) -> float:
        return self.profile.duration_s

    def rate(self, t: float) -> float | None:
        return self.profile.rate(t)

    def describe(self) -> dict:
        stages = self.profile.stages
        total = sum(
            s.duration_s * _mean(prev, s) for prev, s in zip(_previous(self.profile), stages, strict=True)
        )
        return {
            "source": self.source,
            "duration_s": round(self.duration_s, 3),
            "peak_rps": round(self.profile.peak, 3),
            "mean_rps": round(total / self.duration_s, 3) if self.duration_s else 0.0,
            "requests": round(total),
            "note": self.note,
        }

    def compressed(self, time_scale: float) -> dict:
        """The profile as an open-loop ``--rate-profile`` document running ``time_scale`` times faster
        at the same rates (what a run against an emulator with that ``time_scale`` offers)."""
        return {
            "start_rate": self.profile.start_rate,
            "stages": [
                {"duration": f"{s.duration_s / time_scale:.6f}s", "rate": s.rate, "ramp": s.ramp}
                for s in self.profile.stages
            ],
        }

    def shifted(self, offset_s: float) -> Traffic:
        """The same traffic, starting ``offset_s`` later (nothing offered before)."""
        if offset_s <= 0:
            return self
        idle = profiles.Stage(offset_s, 0.0)
        first, *rest = self.profile.stages
        if first.ramp == profiles.LINEAR:  # ramps from start_rate: an explicit step to it keeps the ramp
            head = (idle, profiles.Stage(1e-9, self.profile.start_rate), first)
        else:
            head = (idle, first)
        return Traffic(profiles.Profile(head + tuple(rest), 0.0), self.source, self.note)


def _previous(profile: profiles.Profile) -> list[float]:
    out, prev = [], profile.start_rate
    for stage in profile.stages:
        out.append(prev)
        prev = stage.rate
    return out


def _mean(prev: float, stage: profiles.Stage) -> float:
    return (prev + stage.rate) / 2 if stage.ramp == profiles.LINEAR else stage.rate


def from_file(path: str, option: str = "--profile") -> Traffic:
    """A profile file in the open-loop format; UsageError (one line) for anything wrong with it."""
    file = Path(path)
    try:
        data = profiles.read(path)
    except ValueError as err:
        raise UsageError(option, str(err)) from None
    try:
        profile = profiles.from_mapping(data, file.parent)
    except ValueError as err:
        raise UsageError(option, f"{path}: {err}") from None
    note = ""
    scale = data.get("time_scale", 1) if isinstance(data, dict) else 1
    if isinstance(data, dict) and ("per_minute" in data or "per_minute_file" in data) and scale != 1:
        profile = _unscaled(profile, float(scale))
        note = f"its time_scale {scale} is undone: autoscaling replays a per-minute series at its real pace"
    _check(profile, option, path)
    return Traffic(profile, str(path), note)


def _unscaled(profile: profiles.Profile, scale: float) -> profiles.Profile:
    return profiles.Profile(
        tuple(profiles.Stage(s.duration_s * scale, s.rate / scale, s.ramp) for s in profile.stages),
        profile.start_rate / scale,
    )


def _check(profile: profiles.Profile, option: str, where: str) -> None:
    if not profile.duration_s > 0 or not math.isfinite(profile.duration_s):
        raise UsageError(option, f"{where}: the profile is empty")
    if profile.duration_s > 31 * 86400:
        raise UsageError(option, f"{where}: the profile lasts more than 31 days: simulate a shorter one")
    if profile.peak <= 0:
        raise UsageError(option, f"{where}: the profile offers no traffic (every rate is 0)")


def from_cloudwatch(
    session: Any, region: str, endpoint: str, variant: str | None, days: float, now: datetime | None = None
) -> Traffic:
    """The endpoint's ``Invocations`` (Sum per minute) over the last ``days``, as a per-minute
    profile (a minute without a datapoint had no invocations)."""
    if not 0 < days <= CLOUDWATCH_DAYS:
        raise UsageError(
            "--days",
            f"must be above 0 and at most {CLOUDWATCH_DAYS} (CloudWatch keeps one-minute "
            "datapoints for 15 days)",
        )
    from botocore.config import Config

    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = now - timedelta(days=days)
    dimensions = [{"Name": "EndpointName", "Value": endpoint}]
    if variant:
        dimensions.append({"Name": "VariantName", "Value": variant})
    client = session.create_client(
        "cloudwatch",
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 3}),
    )
    query = {
        "Id": "invocations",
        "ReturnData": True,
        "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": dimensions},
            "Period": 60,
            "Stat": "Sum",
        },
    }
    values: dict[datetime, float] = {}
    kwargs = {
        "MetricDataQueries": [query],
        "StartTime": start,
        "EndTime": now,
        "ScanBy": "TimestampAscending",
    }
    try:
        while True:
            page = client.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    values[stamp.astimezone(UTC).replace(second=0, microsecond=0)] = float(value)
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    except Exception as err:  # ClientError, connection errors, credentials: all say the same to the user
        raise UsageError("--from-cloudwatch", f"GetMetricData for {endpoint} failed: {err}") from None
    if not values:
        what = f"{endpoint}/{variant}" if variant else endpoint
        raise UsageError(
            "--from-cloudwatch",
            f"CloudWatch has no Invocations for {what} in the last {days:g} days "
            f"({region}): check the endpoint, --variant and --region",
        )
    first = min(values)
    minutes = int((now - first).total_seconds() // 60)
    series = [values.get(first + timedelta(minutes=i), 0.0) for i in range(minutes)]
    profile = profiles.from_mapping({"per_minute": series})
    source = f"CloudWatch Invocations of {endpoint}{'/' + variant if variant else ''}, {first.isoformat()} + {minutes} min"
    return Traffic(profile, source)
