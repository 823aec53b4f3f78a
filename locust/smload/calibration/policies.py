"""From a calibration's maximum sustainable throughput to Application Auto Scaling target-tracking
policies for each production variant.

- ``SageMakerVariantInvocationsPerInstance`` (requests per instance per *minute*, 1-minute metric):
  target = max_rps_per_instance x safety_factor x 60, AWS's own guidance.
- ``SageMakerVariantConcurrentRequestsPerModelHighResolution`` (in-flight requests per model
  container, queued ones included, emitted every 10 s, so scale-out reacts in seconds): target =
  concurrency per instance at the knee x safety_factor. The concurrency comes from Little's law
  (throughput x mean latency), measured at the client, so it includes the network round trip.

Cooldowns: 300 s out and in, Application Auto Scaling's documented default for SageMaker endpoint
variants, written out so that they are visible and easy to edit. Pure code, no AWS call.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# inference components scale their copies, on per-copy metrics
COMPONENT_INVOCATIONS_METRIC = "SageMakerInferenceComponentInvocationsPerCopy"
COMPONENT_CONCURRENCY_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
SCALE_OUT_COOLDOWN_S = 300
SCALE_IN_COOLDOWN_S = 300


@dataclass(frozen=True)
class VariantLoad:
    """One variant at the step of maximum sustainable throughput (and at the knee, for concurrency)."""

    variant: str
    instances: int
    rps: float  # at the step of maximum sustainable throughput
    knee_concurrency: float | None  # in-flight requests at the knee (Little's law), all instances together


def policy(target: float, metric: str) -> dict:
    """A ``TargetTrackingScalingPolicyConfiguration``, as ``put-scaling-policy`` takes it."""
    return {
        "TargetValue": target,
        "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
        "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
        "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
    }


def invocations_target(rps_per_instance: float, safety_factor: float) -> float:
    """Requests per instance per minute; rounded down (conservative), at least 1."""
    return float(max(1, math.floor(rps_per_instance * safety_factor * 60)))


def concurrency_target(concurrency_per_instance: float, safety_factor: float) -> float:
    """In-flight requests per model; one decimal (it is an average over 10 s), at least 0.1."""
    return max(0.1, math.floor(concurrency_per_instance * safety_factor * 10) / 10)


def resource_id(endpoint: str, variant: str, component: bool = False) -> str:
    return f"inference-component/{variant}" if component else f"endpoint/{endpoint}/variant/{variant}"


def policy_file(variant: str, kind: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant)
    return f"scaling-policy-{safe}-{kind}.json"


def commands(
    endpoint: str, variant: str, instances: int, kind: str, region: str | None, component: bool = False
) -> list[str]:
    """The AWS CLI commands that register the variant (or component) and apply one policy file."""
    common = [
        "--service-namespace",
        "sagemaker",
        "--resource-id",
        resource_id(endpoint, variant, component),
        "--scalable-dimension",
        COMPONENT_DIMENSION if component else SCALABLE_DIMENSION,
    ]
    if region:
        common += ["--region", region]
    register = [
        "aws",
        "application-autoscaling",
        "register-scalable-target",
        *common,
        "--min-capacity",
        str(instances),
        "--max-capacity",
        str(max(2 * instances, instances + 1)),
    ]
    put = [
        "aws",
        "application-autoscaling",
        "put-scaling-policy",
        *common,
        "--policy-name",
        f"{endpoint}-{variant}-{kind}",
        "--policy-type",
        "TargetTrackingScaling",
        "--target-tracking-scaling-policy-configuration",
        f"file://{policy_file(variant, kind)}",
    ]
    return [shlex.join(register), shlex.join(put)]


def recommend(
    endpoint: str,
    total_rps: float,
    instances: int,
    loads: list[VariantLoad],
    safety_factor: float,
    region: str | None = None,
    component: bool = False,
) -> dict:
    """The recommendation block of calibration.json: totals, and per variant both policies. For
    inference components (``component``) the per-copy metrics and ``DesiredCopyCount``."""
    invocations_metric = COMPONENT_INVOCATIONS_METRIC if component else INVOCATIONS_METRIC
    concurrency_metric = COMPONENT_CONCURRENCY_METRIC if component else CONCURRENCY_METRIC
    per_instance = total_rps / instances
    variants = {}
    for load in loads:
        rps_per_instance = load.rps / load.instances
        entry = {
            "instances": load.instances,
            "max_sustainable_rps": round(load.rps, 3),
            "max_rps_per_instance": round(rps_per_instance, 3),
            "resource_id": resource_id(endpoint, load.variant, component),
            "invocations_per_instance": {
                "metric": invocations_metric,
                "target": invocations_target(rps_per_instance, safety_factor),
                "policy": policy(invocations_target(rps_per_instance, safety_factor), invocations_metric),
                "policy_file": policy_file(load.variant, "invocations"),
                "commands": commands(
                    endpoint, load.variant, load.instances, "invocations", region, component
                ),
            },
        }
        if load.knee_concurrency:
            per_model = load.knee_concurrency / load.instances
            target = concurrency_target(per_model, safety_factor)
            entry["concurrency_high_resolution"] = {
                "metric": concurrency_metric,
                "knee_concurrency_per_instance": round(per_model, 2),
                "target": target,
                "policy": policy(target, concurrency_metric),
                "policy_file": policy_file(load.variant, "concurrency"),
                "commands": commands(
                    endpoint, load.variant, load.instances, "concurrency", region, component
                ),
            }
        variants[load.variant] = entry
    return {
        "instances": instances,
        "max_sustainable_rps": round(total_rps, 3),
        "max_rps_per_instance": round(per_instance, 3),
        "safety_factor": safety_factor,
        "recommended_invocations_per_instance": invocations_target(per_instance, safety_factor),
        "component": component,
        "variants": variants,
    }
