"""The calibration options (``--calibrate`` and how to step), declared once (:mod:`smload.flags`).
Not in the web UI form: a calibration is set up when Locust starts, not per web UI test."""

from __future__ import annotations

from dataclasses import dataclass

from smload import flags
from smload.results import checks
from smload.usage import UsageError

from .search import MODES, RATE, USERS, SearchRules


@dataclass(frozen=True)
class Calibration:
    enabled: bool
    search: SearchRules
    safety_factor: float
    instances: int | None  # --instances N; None: from DescribeEndpoint
    output: str | None


def _option(flag: str, help: str, parse: flags.Parser | None = None, **kwargs) -> flags.Option:
    return flags.Option(flag, help, parse, web_ui=False, **kwargs)


OPTIONS = (
    _option("--calibrate", "run a calibration (step load) instead of a fixed number of users", switch=True),
    _option(
        "--mode",
        "step the concurrency (users: closed loop) or the arrival rate (rate: open loop, constant "
        "arrivals; the knee as a rate)",
        choices=MODES,
        default=USERS,
    ),
    _option(
        "--start-rate",
        "--mode rate: the arrival rate of the first step (req/s)",
        flags.number(1, integer=True),
        default=10,
        metavar="R",
    ),
    _option(
        "--max-rate",
        "--mode rate: never offer more than this (req/s)",
        flags.number(1, integer=True),
        default=100_000,
        metavar="R",
    ),
    _option(
        "--slo",
        'latency objective a step must meet, e.g. "p99<300ms" or "p95[ab-test/variant-a]<0.2s" '
        "(repeatable; the --check grammar, latency metrics only)",
        metavar="EXPR",
        repeat=True,
    ),
    _option(
        "--max-error-rate",
        "highest acceptable error rate of a step",
        flags.percentage,
        default="1%",
        metavar="PCT",
    ),
    _option(
        "--safety-factor",
        "fraction of the maximum sustainable throughput to target (AWS's starting point)",
        flags.number(0.01, 1),
        default=0.5,
        metavar="F",
    ),
    _option(
        "--instances",
        "instances of each variant (default: from DescribeEndpoint)",
        flags.number(1, integer=True),
        metavar="N",
    ),
    _option(
        "--start-users", "users of the first step", flags.number(1, integer=True), default=1, metavar="N"
    ),
    _option(
        "--step-factor",
        "users are multiplied by this from step to step until a stop rule fires",
        flags.number(1.1, 10),
        default=2.0,
        metavar="F",
    ),
    _option(
        "--max-users", "never more users than this", flags.number(1, integer=True), default=256, metavar="N"
    ),
    _option(
        "--step-warmup",
        "start of each step left out of its measurements",
        flags.number(0, 3600, unit="seconds"),
        default=5.0,
        metavar="SECONDS",
    ),
    _option(
        "--step-time",
        "measured part of each step",
        flags.number(1, 3600, unit="seconds"),
        default=10.0,
        metavar="SECONDS",
    ),
    _option(
        "--max-steps", "at most this many steps", flags.number(1, 1000, integer=True), default=40, metavar="N"
    ),
    _option(
        "--output",
        "write calibration.json, calibration.html and the scaling policies into DIR",
        flags.writable_directory,
        metavar="DIR",
    ),
)


def build(values: flags.Values) -> Calibration:
    slos = checks.parse_all(values["slo"], option="--slo")
    for slo in slos:
        if not slo.is_latency or slo.op not in ("<", "<="):
            raise UsageError(
                "--slo",
                f"{slo.text!r}: an SLO is a latency bound, e.g. p99<300ms (use --max-error-rate for errors)",
            )
    rate = values["mode"] == RATE
    search = SearchRules(
        slos=tuple(slos),
        max_error_rate=values["max_error_rate"],
        start_users=values["start_rate"] if rate else values["start_users"],
        step_factor=values["step_factor"],
        max_users=values["max_rate"] if rate else values["max_users"],
        warmup_s=values["step_warmup"],
        measure_s=values["step_time"],
        max_steps=values["max_steps"],
        mode=values["mode"],
    )
    if search.max_users < search.start_users:
        raise UsageError(
            "--max-rate" if rate else "--max-users",
            f"{search.max_users} is below {'--start-rate' if rate else '--start-users'} {search.start_users}",
        )
    return Calibration(
        values["calibrate"], search, values["safety_factor"], values["instances"], values["output"]
    )


GROUP = flags.register(
    flags.Group(
        "calibration",
        "Calibration",
        "Find the knee and recommend the autoscaling target (sagemaker-loadtest; see `smload calibrate`).",
        OPTIONS,
        build,
        rank=40,
    )
)
