"""``smload autoscaling``: pick the autoscaling strategy, then verify it.

    smload autoscaling simulate --calibration calibration.json (--profile FILE | --from-cloudwatch ENDPOINT --days N)
                                [--policy FILE ...] [--variant V] [--min-capacity N] [--max-capacity N]
                                [--instances N] [--startup-time 5m] [--resolution 1m|10s] [--arrival poisson|constant]
                                [--slo EXPR ...] [--max-error-rate 1%] [--instance-price USD] [--output DIR]
    smload autoscaling verify   ... (smload.calibration.verify)

``simulate`` runs the profile through the calibrated endpoint under each policy (without
``--policy``: the two calibration recommended) and writes ``strategy.json`` and ``strategy.html``
to ``--output``; it prints the comparison and the recommendation. Bad input: one line, exit 2,
before anything is computed or called. Never imports Locust.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from smload import exit_codes, scaling
from smload.usage import UsageError

from . import simulation, strategy, traffic

RESOLUTIONS = {"1m": 60, "60s": 60, "10s": 10}
DEFAULT_STARTUP_S = 300.0  # a few minutes is typical of a SageMaker instance launch: measure yours


class _Parser(argparse.ArgumentParser):
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="smload autoscaling",
        description="Pick the autoscaling strategy of a SageMaker endpoint: "
        "simulate policies on a traffic profile, then verify one against the endpoint.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{simulate,verify}", parser_class=_Parser)
    sim = sub.add_parser(
        "simulate",
        help="compare policies on a traffic profile (calibration + profile)",
        description="Simulate Application Auto Scaling policies on a traffic profile with the "
        "capacity a calibration measured; compare them and recommend one.",
    )
    add_common(sim)
    source = sim.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--profile",
        metavar="FILE",
        help="the traffic: a rate profile (open-loop format: stages, or a per-minute series)",
    )
    source.add_argument(
        "--from-cloudwatch",
        metavar="ENDPOINT",
        help="the traffic: this endpoint's Invocations per minute from CloudWatch",
    )
    sim.add_argument(
        "--days",
        type=positive(float, traffic.CLOUDWATCH_DAYS),
        default=1.0,
        help="with --from-cloudwatch: how many days back (default 1, at most 15)",
    )
    sim.add_argument("--region", help="with --from-cloudwatch: the AWS region (default: botocore's)")
    sim.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="a scaling policy as JSON (what calibration writes, a put-scaling-policy request, "
        "describe-scaling-policies output); repeatable; default: calibration's two",
    )
    sim.add_argument(
        "--resolution",
        choices=sorted(RESOLUTIONS),
        default="1m",
        help="the timeline's rows (default 1m; 10s shows high-resolution scaling)",
    )
    sim.add_argument(
        "--output",
        default="autoscaling",
        metavar="DIR",
        help="where strategy.json and strategy.html go (default ./autoscaling)",
    )
    from . import verify

    verify.add_parser(sub, add_common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return exit_codes.USAGE
    try:
        if args.command == "simulate":
            return simulate_main(args)
        from . import verify

        return verify.main(args)
    except UsageError as err:
        sys.stderr.write(f"{parser.prog} {args.command}: error: {err}\n")
        return exit_codes.USAGE


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


def simulate_main(args: argparse.Namespace) -> int:
    from smload.results import reports

    endpoint = args.from_cloudwatch
    setup = Setup(args, endpoint)
    entries = setup.policy_sets(args.policy)
    if not entries:
        raise UsageError(
            "--policy", "the calibration recommended no policy for this variant: give --policy FILE"
        )
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError("--output", f"{output} exists and is not a directory")
    if args.profile:
        load = traffic.from_file(args.profile)
    else:
        from smload.invoke import aws

        session = aws.session()
        region = args.region or aws.default_region(session)
        if not region:
            raise UsageError("--region", "no AWS region: give --region or set AWS_REGION")
        load = traffic.from_cloudwatch(session, region, endpoint, setup.cap.variant, args.days)
    for entry in entries:
        entry["result"] = setup.run(entry, load, RESOLUTIONS[args.resolution], args.arrival)
    ranked = strategy.rank([e["result"] for e in entries])
    doc = strategy.document(
        endpoint=setup.endpoint,
        cap=setup.cap,
        calibration_file=str(args.calibration),
        traffic=load.describe(),
        settings={
            "min_capacity": setup.limits.min_capacity,
            "max_capacity": setup.limits.max_capacity,
            "instances": setup.instances,
            "startup_s": setup.limits.startup_s,
            "arrival": args.arrival,
            "resolution_s": RESOLUTIONS[args.resolution],
            "max_error_rate": setup.max_error_rate,
            "instance_price": setup.price,
            "queue_per_instance": setup.cap.queue_per_instance,
        },
        slo=[c.text for c in setup.slo],
        entries=entries,
        ranked=ranked,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        region=getattr(args, "region", None),
    )
    try:
        paths = reports.write_strategy(output, doc)
    except OSError as err:
        raise UsageError("--output", f"cannot write {output}: {err.strerror or err}") from None
    out = sys.stdout
    info = load.describe()
    out.write(
        f"Traffic: {info['source']}: {info['duration_s'] / 60:.1f} min, peak {info['peak_rps']:g} req/s, "
        f"mean {info['mean_rps']:g} req/s{'; ' + load.note if load.note else ''}\n"
    )
    out.write(f"Capacity ({setup.cap.variant}): {setup.cap.describe()}\n")
    out.write(
        f"Scalable target: {setup.limits.min_capacity}..{setup.limits.max_capacity} instances, "
        f"{setup.instances} at the start, new ones in service after {setup.limits.startup_s:g} s; "
        f"SLO per minute: {', '.join(c.text for c in setup.slo) or 'none'}, errors < {setup.max_error_rate:.2%}\n\n"
    )
    for line in strategy.table(ranked, setup.price is not None):
        out.write(line + "\n")
    rec = doc["recommendation"]
    out.write(f"\nRecommendation: {rec['policy']}: {rec['reason']}.\n")
    out.write(f"Written: {', '.join(str(p) for p in paths)}\n")
    return exit_codes.OK
