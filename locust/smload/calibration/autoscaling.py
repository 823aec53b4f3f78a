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
import sys
from datetime import UTC, datetime
from pathlib import Path

from smload import exit_codes
from smload.usage import UsageError

from . import strategy, traffic
from .inputs import RESOLUTIONS, Parser, Setup, add_common, positive


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="smload autoscaling",
        description="Pick the autoscaling strategy of a SageMaker endpoint: "
        "simulate policies on a traffic profile, then verify one against the endpoint.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{simulate,verify}", parser_class=Parser)
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
