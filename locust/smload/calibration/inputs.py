"""What ``smload autoscaling simulate`` and ``verify`` share: the argument types, the options of
the scalable target and the SLO, and :class:`Setup`, those options checked against the
calibration (one line and exit 2 for anything wrong, before anything is computed or sent)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smload import exit_codes, scaling
from smload.usage import UsageError

from . import simulation, strategy, traffic

RESOLUTIONS = {"1m": 60, "60s": 60, "10s": 10}
DEFAULT_STARTUP_S = 300.0  # a few minutes is typical of a SageMaker instance launch: measure yours


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as every smload command
        self.exit(exit_codes.USAGE, f"{self.prog}: error: {message}\n")


def duration(value: str) -> float:
    """``300``, ``300s``, ``5m``, ``1h`` -> seconds."""
    text = value.strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            number, scale = text[: -len(unit)], units[unit]
            break
    else:
        number, scale = text, 1
    try:
        seconds = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 300s, 5m or 1h") from None
    if not 0 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"{value!r}: give 0 to 24 hours")
    return seconds


def fraction(value: str) -> float:
    text = value.strip()
    try:
        number = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a rate like 1% or 0.01") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give 0% to 100%")
    return number


def positive(kind=float, upper: float = 1e9):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if not 0 < number <= upper:
            raise argparse.ArgumentTypeError(f"{value!r}: give a number above 0 and at most {upper:g}")
        return number

    return parse


def add_common(p: argparse.ArgumentParser) -> None:
    """What simulate and verify share: the capacity, the policies, the scalable target, the SLO."""
    p.add_argument(
        "--calibration",
        required=True,
        metavar="FILE",
        help="calibration.json from smload calibrate: the capacity per instance and the service time",
    )
    p.add_argument("--variant", help="the production variant (default: the calibration's only one)")
    p.add_argument(
        "--min-capacity",
        type=positive(int, scaling.MAX_CAPACITY),
        metavar="N",
        help="register-scalable-target's MinCapacity (default: the calibration's instances)",
    )
    p.add_argument(
        "--max-capacity",
        type=positive(int, scaling.MAX_CAPACITY),
        metavar="N",
        help="register-scalable-target's MaxCapacity (default: 4 x the minimum)",
    )
    p.add_argument(
        "--instances",
        type=positive(int, scaling.MAX_CAPACITY),
        metavar="N",
        help="instances at the start (default: the minimum)",
    )
    p.add_argument(
        "--startup-time",
        type=duration,
        metavar="DURATION",
        help="from a scale-out decision until the new instances take traffic (default 5m; verify: the "
        "emulator's startup_s)",
    )
    p.add_argument(
        "--arrival",
        choices=sorted(simulation.ARRIVALS),
        default="poisson",
        help="how requests arrive within a second (default poisson)",
    )
    p.add_argument(
        "--queue-per-instance",
        type=positive(int, 1_000_000),
        default=100,
        metavar="N",
        help="requests one instance holds waiting before it refuses more (default 100, TorchServe's)",
    )
    p.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help='a latency objective per minute, e.g. "p99<300ms" (repeatable; default: the calibration\'s)',
    )
    p.add_argument(
        "--max-error-rate",
        type=fraction,
        metavar="RATE",
        help="a minute with more failed requests breaks the SLO (default: the calibration's, else 1%%)",
    )
    p.add_argument(
        "--instance-price",
        type=positive(float),
        metavar="USD_PER_HOUR",
        help="price of one instance-hour: adds the cost to the comparison",
    )


def read_calibration(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read(64 * 1024 * 1024)
        doc = json.loads(raw.decode("utf-8"))
    except OSError as err:
        raise UsageError("--calibration", f"cannot read {path}: {err.strerror or err}") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UsageError("--calibration", f"{path} is not JSON: {err}") from None
    return doc


class Setup:
    """Everything a simulation needs, checked: the capacity, the policies and their limits, the SLO."""

    def __init__(self, args: argparse.Namespace, endpoint: str | None) -> None:
        from smload.results.checks import parse_all

        self.calibration = read_calibration(args.calibration)
        self.cap = strategy.capacity(
            self.calibration, args.variant, queue_per_instance=args.queue_per_instance
        )
        measured = self.calibration.get("endpoint")
        if endpoint and measured and endpoint != measured:
            raise UsageError(
                "--calibration",
                f"{args.calibration} measured endpoint {measured!r}, not {endpoint!r}: "
                "calibrate this endpoint, or name the one calibrated",
            )
        self.endpoint = endpoint or measured
        base = strategy.instances(self.calibration, self.cap.variant)
        low = args.min_capacity or base
        high = args.max_capacity or max(4 * low, low + 1)
        startup = args.startup_time if args.startup_time is not None else DEFAULT_STARTUP_S
        self.limits = scaling.check_limits(scaling.Limits(low, high, startup), [], "--min-capacity")
        self.instances = args.instances or low
        if not low <= self.instances <= high:
            raise UsageError(
                "--instances", f"{self.instances} is outside --min-capacity {low} .. --max-capacity {high}"
            )
        settings = self.calibration.get("settings") or {}
        slo_texts = args.slo or list(settings.get("slo") or [])
        self.slo = tuple(c for c in parse_all(slo_texts, "--slo"))
        for check in self.slo:
            if not (check.metric.startswith("p") and check.name is None):
                raise UsageError(
                    "--slo", f"{check.text!r}: give a latency percentile for all requests, e.g. p99<300ms"
                )
        self.max_error_rate = (
            args.max_error_rate
            if args.max_error_rate is not None
            else float(settings.get("max_error_rate", 0.01))
        )
        self.price = args.instance_price

    def policy_sets(self, files: list[str]) -> list[dict]:
        if not files:
            sets = [
                {"name": name, "file": None, "policies": policies}
                for name, policies in strategy.calibration_policies(self.calibration, self.cap.variant)
            ]
        else:
            sets = []
            for file in files:
                policies = scaling.load_policies(file)
                sets.append({"name": Path(file).stem, "file": file, "policies": policies})
        names = [s["name"] for s in sets]
        if len(set(names)) != len(names):
            raise UsageError("--policy", "two policy files have the same name: rename one")
        for s in sets:
            s["limits"] = scaling.check_limits(self.limits, s["policies"], "--min-capacity")
            s["instances"] = self.instances
        return sets

    def run(
        self, entry: dict, load: traffic.Traffic, resolution_s: int, arrivals: str, time_scale: float = 1.0
    ) -> simulation.Result:
        return simulation.simulate(
            self.cap,
            load.rate,
            load.duration_s,
            entry["policies"],
            entry["limits"],
            entry["instances"],
            name=entry["name"],
            resolution_s=resolution_s,
            arrivals=arrivals,
            slo=self.slo,
            max_error_rate=self.max_error_rate,
            instance_price=self.price,
            time_scale=time_scale,
        )
