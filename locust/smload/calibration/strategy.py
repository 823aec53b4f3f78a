"""Pick the autoscaling strategy: the capacity a calibration measured, the policies it wrote, their
simulated runs side by side, a ranking and a recommendation with its reason — ``strategy.json``.

Ranking, in this order: fewest minutes that broke the SLO (a latency percentile over its threshold,
or more errors than ``--max-error-rate``), then fewest failed requests, then fewest instance-hours.
A policy that serves the traffic as well as another for less money wins; one that saves money by
failing requests does not.

Pure code: dicts in, dicts out (the command reads and writes the files).
"""

from __future__ import annotations

from typing import Any

from smload import scaling
from smload.usage import UsageError

from . import simulation
from .simulation import Capacity, Service

KIND = "autoscaling-strategy"


def capacity(
    calibration: dict, variant: str | None, where: str = "--calibration", queue_per_instance: int = 100
) -> Capacity:
    """The per-instance capacity of one variant from a calibration.json (its recommendation and its
    lowest-load step); UsageError for a file that holds none."""
    if not isinstance(calibration, dict) or "steps" not in calibration or "recommendation" not in calibration:
        raise UsageError(
            where,
            "not a calibration.json (no steps, no recommendation): give the file "
            "smload calibrate --output wrote",
        )
    variants = (calibration.get("recommendation") or {}).get("variants") or {}
    if not variants:
        raise UsageError(
            where,
            "holds no recommendation (no step met the SLO, or the instance count was unknown): "
            "calibrate again",
        )
    if variant is None:
        if len(variants) > 1:
            raise UsageError(
                "--variant", f"the calibration measured {', '.join(sorted(variants))}: choose one"
            )
        variant = next(iter(variants))
    entry = variants.get(variant)
    if entry is None:
        raise UsageError(
            "--variant", f"{variant!r} is not in the calibration (it has {', '.join(sorted(variants))})"
        )
    mu = entry.get("max_rps_per_instance")
    if not isinstance(mu, int | float) or not mu > 0:
        raise UsageError(where, f"variant {variant}: no max_rps_per_instance")
    good = [s for s in calibration.get("steps") or [] if s.get("verdict") == "ok" and s.get("requests")]
    if not good:
        raise UsageError(where, "no step met the SLO: there is no service time to simulate")
    lowest = min(good, key=lambda s: (s.get("users") or 0, s.get("index") or 0))
    stats = (lowest.get("names") or {}).get(f"{calibration.get('endpoint')}/{variant}") or lowest
    points = []
    for q, key in ((0.5, "p50_ms"), (0.9, "p90_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        value = stats.get(key)
        if isinstance(value, int | float) and value > 0:
            points.append((q, float(max([value] + [v for _, v in points]))))
    if not points:
        raise UsageError(where, f"the lowest-load step has no latency percentiles for {variant}")
    mean = stats.get("avg_ms") if isinstance(stats.get("avg_ms"), int | float) else points[0][1]
    knee = (entry.get("concurrency_high_resolution") or {}).get("knee_concurrency_per_instance")
    slots = float(knee) if isinstance(knee, int | float) and knee > 0 else max(1.0, mu * mean / 1000.0)
    return Capacity(variant, float(mu), slots, Service(tuple(points), float(mean)), queue_per_instance)


def calibration_policies(calibration: dict, variant: str) -> list[tuple[str, list[scaling.Policy]]]:
    """The policies calibration recommended for the variant (both kinds), named as its files."""
    entry = ((calibration.get("recommendation") or {}).get("variants") or {}).get(variant) or {}
    out = []
    for kind in ("invocations_per_instance", "concurrency_high_resolution"):
        if kind in entry:
            name = entry[kind].get("policy_file", kind).removesuffix(".json")
            out.append((name, scaling.parse_policies(entry[kind]["policy"], f"--calibration: {kind}", name)))
    return out


def instances(calibration: dict, variant: str) -> int:
    entry = ((calibration.get("recommendation") or {}).get("variants") or {}).get(variant) or {}
    return int(entry.get("instances") or calibration.get("instances") or 1)


def rank(results: list[simulation.Result]) -> list[simulation.Result]:
    return sorted(
        results,
        key=lambda r: (r.summary["slo_violating_minutes"], r.summary["errors"], r.summary["instance_hours"]),
    )


def recommend(ranked: list[simulation.Result]) -> dict:
    """The winner and why, in words a reader can check against the table."""
    best = ranked[0]
    b = best.summary
    if len(ranked) == 1:
        return {"policy": best.policy, "reason": f"the only policy simulated: {_said(b)}"}
    other = ranked[1]
    o = other.summary
    if b["slo_violating_minutes"] < o["slo_violating_minutes"]:
        why = (
            f"fewest minutes breaking the SLO: {b['slo_violating_minutes']} of {b['minutes']}, against "
            f"{o['slo_violating_minutes']} for {other.policy}"
        )
    elif b["errors"] < o["errors"]:
        why = (
            f"as many SLO-breaking minutes as {other.policy} ({b['slo_violating_minutes']}) but fewer failed "
            f"requests: {b['errors']:,} against {o['errors']:,}"
        )
    elif b["instance_hours"] < o["instance_hours"]:
        saved = o["instance_hours"] - b["instance_hours"]
        money = f" ({_money(o['cost'] - b['cost'])})" if b.get("cost") is not None else ""
        why = (
            f"serves the profile as well as {other.policy} ({b['slo_violating_minutes']} SLO-breaking minutes, "
            f"{b['errors']:,} failed requests) for {saved:.2f} fewer instance-hours{money}"
        )
    else:
        why = f"ties with {other.policy} on every count; listed first"
    if b["slo_violating_minutes"]:
        why += f"; even so it breaks the SLO in {b['slo_violating_minutes']} minutes: raise the capacity or lower the target"
    return {"policy": best.policy, "reason": why}


def _said(s: dict) -> str:
    return (
        f"{s['slo_violating_minutes']} SLO-breaking minutes, {s['errors']:,} failed requests, "
        f"{s['instance_hours']:.2f} instance-hours"
    )


def _money(value: float) -> str:
    return f"${value:,.2f} less"


def document(
    *,
    endpoint: str | None,
    cap: Capacity,
    calibration_file: str,
    traffic: dict,
    settings: dict,
    slo: list[str],
    entries: list[dict[str, Any]],
    ranked: list[simulation.Result],
    generated_at: str,
    region: str | None = None,
) -> dict:
    """strategy.json: what was simulated, each policy's timeline and summary, the ranking and the
    recommendation (with the commands that apply it)."""
    by_name = {e["name"]: e for e in entries}
    recommendation = recommend(ranked)
    best = by_name[recommendation["policy"]]
    recommendation["documents"] = [p.document for p in best["policies"]]
    recommendation["commands"] = commands(endpoint, cap.variant, best, region)
    return {
        "kind": KIND,
        "endpoint": endpoint,
        "variant": cap.variant,
        "generated_at": generated_at,
        "calibration": {
            "file": calibration_file,
            "max_rps_per_instance": cap.rps_per_instance,
            "slots_per_instance": round(cap.slots_per_instance, 3),
            "service_ms": {f"p{round(q * 100)}": v for q, v in cap.service.points},
            "service_mean_ms": cap.service.mean_ms,
            "queue_per_instance": cap.queue_per_instance,
            "timeout_s": cap.timeout_s,
            "describe": cap.describe(),
        },
        "traffic": traffic,
        "settings": settings,
        "slo": slo,
        "policies": [
            {
                "name": e["name"],
                "file": e.get("file"),
                "describe": "; ".join(p.describe() for p in e["policies"]),
                "alarms": [a.describe() for p in e["policies"] for a in p.alarms() if a],
                "documents": [p.document for p in e["policies"]],
                "limits": {
                    "min_capacity": e["limits"].min_capacity,
                    "max_capacity": e["limits"].max_capacity,
                    "startup_s": e["limits"].startup_s,
                    "instances": e["instances"],
                },
                "summary": e["result"].summary,
                "events": e["result"].events,
                "timeline": _columns(e["result"].rows),
            }
            for e in entries
        ],
        "ranking": [r.policy for r in ranked],
        "recommendation": recommendation,
    }


def _columns(rows: list[dict]) -> dict:
    keys = list(rows[0]) if rows else []
    return {k: [row.get(k) for row in rows] for k in keys}


def commands(endpoint: str | None, variant: str, entry: dict, region: str | None) -> list[str]:
    """The AWS CLI commands that register the variant with these limits and apply its policies."""
    import shlex

    limits = entry["limits"]
    resource = f"endpoint/{endpoint or 'ENDPOINT'}/variant/{variant}"
    common = [
        "--service-namespace",
        "sagemaker",
        "--resource-id",
        resource,
        "--scalable-dimension",
        scaling.VARIANT_DIMENSION,
    ] + (["--region", region] if region else [])
    out = [
        shlex.join(
            [
                "aws",
                "application-autoscaling",
                "register-scalable-target",
                *common,
                "--min-capacity",
                str(limits.min_capacity),
                "--max-capacity",
                str(limits.max_capacity),
            ]
        )
    ]
    for p in entry["policies"]:
        config = (
            "target-tracking-scaling-policy-configuration"
            if p.tracking
            else "step-scaling-policy-configuration"
        )
        body = p.document.get(
            "TargetTrackingScalingPolicyConfiguration" if p.tracking else "StepScalingPolicyConfiguration",
            p.document,
        )
        out.append(
            shlex.join(
                [
                    "aws",
                    "application-autoscaling",
                    "put-scaling-policy",
                    *common,
                    "--policy-name",
                    f"{endpoint or 'ENDPOINT'}-{variant}-{p.name}"[:256],
                    "--policy-type",
                    p.type,
                    f"--{config}",
                    _json(body),
                ]
            )
        )
    return out


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def table(ranked: list[simulation.Result], price: bool) -> list[str]:
    """The comparison as text (the command prints it)."""
    head = ["policy", "SLO-breaking min", "errors", "error rate", "peak p99 ms", "max inst", "instance-h"]
    if price:
        head.append("cost")
    rows = [head]
    for r in ranked:
        s = r.summary
        row = [
            r.policy,
            f"{s['slo_violating_minutes']}/{s['minutes']}",
            f"{s['errors']:,}",
            f"{s['error_rate'] * 100:.2f}%",
            "n/a" if s["peak_p99_ms"] is None else f"{s['peak_p99_ms']:,.1f}",
            str(s["max_instances"]),
            f"{s['instance_hours']:.2f}",
        ]
        if price:
            row.append("n/a" if s["cost"] is None else f"${s['cost']:,.2f}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for k, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            lines.append("-" * len(lines[0]))
    return lines
