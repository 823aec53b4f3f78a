"""The A/B analysis at the end of a test (a step of :meth:`TestRun.finish`): the production variants
of each endpoint compared pairwise (or against ``--baseline-variant``) from the merged histograms,
and the observed traffic split tested against the expected one (``--expected-split``, else the
endpoint's own weights). The statistics are :mod:`smload.results.compare` and ``.split``; this
module gathers the samples and asks the control plane for the weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from smload.invoke import control_plane
from smload.record import LATENCY, UNKNOWN, Identity
from smload.results import compare, split

logger = logging.getLogger("smload")


@dataclass
class Analysis:
    rows: list[compare.Row] = field(default_factory=list)
    split: split.Split | None = None
    notes: list[str] = field(default_factory=list)  # why a part is missing (no weights, no baseline)

    def summary_lines(self) -> list[str]:
        out = []
        if self.rows:
            out.append(
                f"variants compared (candidate - baseline, {self.rows[0].confidence:.0%} confidence intervals):"
            )
            out += compare.table(self.rows)
            pairs: dict[tuple[str, str], list[compare.Row]] = {}
            for row in self.rows:
                pairs.setdefault((row.baseline, row.candidate), []).append(row)
            out += [f"  {compare.headline(rows)}" for rows in pairs.values()]
        if self.split is not None:
            out.append(self.split.describe())
        out += self.notes
        return out


def analyse(run: Any) -> Analysis:
    wanted = run.settings.get("verdict")
    baseline = wanted.baseline_variant if wanted else None
    analysis = Analysis()
    groups: dict[tuple[str, str], list[compare.Sample]] = {}
    series = run.measurements.test()
    for identity, s in series.items():
        if identity.invocation and identity.endpoint and identity.target not in (None, UNKNOWN):
            groups.setdefault((identity.api, identity.endpoint), []).append(
                compare.Sample(
                    identity.name,
                    s.requests,
                    s.failure_count,
                    {kind: h.copy() for kind, h in s.timings.items()},
                    identity.target,
                )
            )
    for (_api, endpoint), samples in sorted(groups.items()):
        if len(samples) < 2:
            continue
        if baseline and not any(s.target == baseline for s in samples):
            analysis.notes.append(
                f"--baseline-variant {baseline}: no request of {endpoint} reached it; "
                "every pair compared instead"
            )
        for a, b in compare.pairs(samples, baseline):
            analysis.rows += compare.compare(a, b, effect=_effect(wanted))
    analysis.split = _split(run, series, wanted, analysis.notes)
    return analysis


def _effect(wanted: Any) -> compare.Effect:
    """The difference worth detecting per statistic (what the sample sizes are computed for): the
    limit of a check that names a comparison on it (``p95[B]-p95[A]<10ms``), else the default."""
    limits = {
        ("mean" if c.metric == "avg" else c.metric): c.threshold
        for c in (wanted.checks if wanted else ())
        if c.minus is not None and c.threshold > 0
    }

    def effect(kind: str, statistic: str, baseline_value: float) -> float | None:
        if kind == LATENCY and statistic in limits:
            return limits[statistic]
        return compare.default_effect(kind, statistic, baseline_value)

    return effect


def _split(run: Any, series: dict[Identity, Any], wanted: Any, notes: list[str]) -> split.Split | None:
    """The split of the requests of ``--endpoint-name`` over its variants, when the load generator let
    the endpoint choose (no ``--target-variant``, no inference component)."""
    endpoint = run.endpoint
    if endpoint is None or endpoint.target_variant or endpoint.inference_component:
        return None
    counts: dict[str, int] = {}
    for identity, s in series.items():
        if (
            identity.invocation
            and identity.endpoint == endpoint.endpoint_name
            and identity.target not in (None, UNKNOWN)
        ):
            counts[identity.target] = counts.get(identity.target, 0) + s.requests
    if not counts:
        return None
    if wanted is not None and wanted.expected_split:
        return split.check(counts, wanted.expected_split, "--expected-split")
    try:
        weights, source = control_plane.variant_weights(run.session_for(endpoint)[0], endpoint)
    except LookupError as err:
        if len(counts) > 1:
            notes.append(f"traffic split not tested: {err}; give --expected-split")
        return None
    if len(weights) < 2 and len(counts) < 2:
        return None  # one variant: nothing to split
    try:
        return split.check(counts, weights, source)
    except ValueError as err:
        notes.append(f"traffic split not tested: the weights from {source} are unusable ({err})")
        return None
