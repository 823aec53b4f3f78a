"""Application Auto Scaling for SageMaker variants and inference components, as pure arithmetic:
the policy documents (checked as Application Auto Scaling would check them), the CloudWatch alarms
it creates for them, and the scaling decisions those alarms trigger. The emulator runs it against
its live counters (``smload.emulator.autoscaling``), the simulation against modelled traffic
(``smload.calibration.simulation``): one model of the policy, two sources of metrics.

Time is *policy time*, in seconds (the emulator compresses it by its ``time_scale``). The caller
closes a :class:`Window` every :data:`WINDOW_S` (10) seconds, in order; the scaler builds each
alarm's datapoints from them, evaluates the alarms at the end of each of their periods and returns
the scaling activities it starts.

What AWS documents, and how it is modelled here (docs/autoscaling.md has the sources):

* **Target tracking** creates two alarms per policy. ``SageMakerVariantInvocationsPerInstance``
  (and ``...InvocationsPerCopy``): the one-minute ``Sum`` of ``InvocationsPerInstance``; scale out
  when **3 of 3** datapoints are above the target, scale in when **15 of 15** are below **90% of
  the target**. The high-resolution ``...ConcurrentRequestsPerModelHighResolution`` (``...PerCopy``):
  the ``Average`` of ``ConcurrentRequestsPerModel`` over **10-second** periods, 3 of 3 to scale out;
  scale-in as slowly as the standard metrics (15 minutes: 90 of 90 ten-second datapoints).
* A policy acts when its alarm enters ALARM and again once a minute while it stays there (how
  CloudWatch invokes Auto Scaling actions). Scale-out: ``ceil(instances x metric / target)``
  (proportional; the instances that served the datapoint: the load it measured over the target), if
  above the desired count. Scale-in: the same formula, never below the
  minimum, only when every target-tracking policy of the target agrees (its low alarm is in ALARM).
* **Step scaling**: the policy's own alarm (any period of 10 s or whole minutes, M of N
  datapoints); the step whose interval holds ``metric - threshold`` gives a ``ChangeInCapacity``,
  ``PercentChangeInCapacity`` or ``ExactCapacity``.
* **Cooldowns** start when an activity completes. During a scale-out cooldown the capacity it added
  counts as current, so only a larger scale-out follows; a scale-in cooldown blocks scale-in only.
* **SageMaker**: a capacity change puts the endpoint in ``Updating`` until its instances are in
  service (``startup_s`` after the decision) or drained; no other change starts meanwhile
  (``UpdateEndpointWeightsAndCapacities`` is refused while the endpoint updates). New instances take
  traffic only once in service; removed ones take no new requests and finish those they hold.
* **Missing data**: a period without invocations has no ``InvocationsPerInstance`` datapoint, which
  breaches nothing: target tracking on invocations never scales in an idle endpoint (as on AWS).

Import-light (the standard library; botocore only to check a policy's shape): the emulator imports it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smload.usage import UsageError

WINDOW_S = 10  # the finest metric period (high-resolution metrics), and the scaler's clock
MINUTE_S = 60
MAX_FILE_BYTES = 1024 * 1024

# Predefined metric types for SageMaker (Application Auto Scaling's MetricType enum).
INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY_PER_MODEL = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
INVOCATIONS_PER_COPY = "SageMakerInferenceComponentInvocationsPerCopy"
CONCURRENCY_PER_COPY = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
VARIANT_METRICS = (INVOCATIONS_PER_INSTANCE, CONCURRENCY_PER_MODEL)
COMPONENT_METRICS = (INVOCATIONS_PER_COPY, CONCURRENCY_PER_COPY)
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"

# CloudWatch metrics (namespace AWS/SageMaker) an alarm can watch here, and what each measures:
# "per_instance" is the sum over requests of 1 / instances in service, "invocations" the request
# count, "concurrency" the requests in flight per instance (queued ones included).
CLOUDWATCH_METRICS = {
    "InvocationsPerInstance": "per_instance",
    "InvocationsPerCopy": "per_instance",
    "Invocations": "invocations",
    "ConcurrentRequestsPerModel": "concurrency",
    "ConcurrentRequestsPerCopy": "concurrency",
}
_STATISTICS = {"per_instance": ("Sum",), "invocations": ("Sum",), "concurrency": ("Average", "Maximum")}
_TRACKED = {  # predefined metric -> (CloudWatch metric, statistic, period of the scale-out alarm)
    INVOCATIONS_PER_INSTANCE: ("InvocationsPerInstance", "Sum", MINUTE_S),
    INVOCATIONS_PER_COPY: ("InvocationsPerCopy", "Sum", MINUTE_S),
    CONCURRENCY_PER_MODEL: ("ConcurrentRequestsPerModel", "Average", WINDOW_S),
    CONCURRENCY_PER_COPY: ("ConcurrentRequestsPerCopy", "Average", WINDOW_S),
}
SCALE_OUT_DATAPOINTS = 3
SCALE_IN_SECONDS = 15 * MINUTE_S  # 15 one-minute datapoints (90 ten-second ones for high resolution)
SCALE_IN_RATIO = 0.9
DEFAULT_COOLDOWN_S = 300  # Application Auto Scaling's default for SageMaker variants
REINVOKE_S = MINUTE_S  # an alarm in ALARM invokes its Auto Scaling action again once a minute
COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")
MAX_CAPACITY = 10_000
MAX_TARGET = 2.0**360  # TargetValue's documented range
MAX_COOLDOWN_S = 2**31 - 1  # an Integer in the service model


# ---------------------------------------------------------------------------------------------
# Policies


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch metric alarm on one SageMaker metric: ALARM when ``datapoints`` of the last
    ``evaluation_periods`` datapoints breach ``threshold``."""

    metric: str  # CloudWatch metric name (CLOUDWATCH_METRICS)
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints: int
    threshold: float
    comparison: str

    @property
    def kind(self) -> str:
        return CLOUDWATCH_METRICS[self.metric]

    def describe(self) -> str:
        sign = {
            "GreaterThanThreshold": ">",
            "GreaterThanOrEqualToThreshold": ">=",
            "LessThanThreshold": "<",
            "LessThanOrEqualToThreshold": "<=",
        }[self.comparison]
        return (
            f"{self.metric} {self.statistic} {sign} {_num(self.threshold)} for {self.datapoints} of "
            f"{self.evaluation_periods} x {self.period_s} s"
        )


@dataclass(frozen=True)
class Step:
    lower: float | None  # bounds on metric - threshold; None: unbounded
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class Policy:
    """One scaling policy: target tracking on a predefined SageMaker metric, or step scaling on an alarm."""

    name: str
    type: str  # "TargetTrackingScaling" or "StepScaling"
    document: dict  # as given (a put-scaling-policy configuration), for reports
    metric: str | None = None  # target tracking: the predefined metric type
    target: float = 0.0
    scale_out_cooldown_s: int = DEFAULT_COOLDOWN_S
    scale_in_cooldown_s: int = DEFAULT_COOLDOWN_S
    disable_scale_in: bool = False
    alarm: Alarm | None = None  # step scaling
    adjustment_type: str = "ChangeInCapacity"
    steps: tuple[Step, ...] = ()
    min_adjustment_magnitude: int | None = None
    cooldown_s: int = DEFAULT_COOLDOWN_S

    @property
    def tracking(self) -> bool:
        return self.type == "TargetTrackingScaling"

    def alarms(self) -> tuple[Alarm, Alarm | None]:
        """(scale-out or step alarm, scale-in alarm or None): the alarms AWS creates for this policy."""
        if not self.tracking:
            return self.alarm, None
        metric, statistic, period = _TRACKED[self.metric]
        high = Alarm(
            metric,
            statistic,
            period,
            SCALE_OUT_DATAPOINTS,
            SCALE_OUT_DATAPOINTS,
            self.target,
            "GreaterThanThreshold",
        )
        n = SCALE_IN_SECONDS // period
        low = Alarm(metric, statistic, period, n, n, SCALE_IN_RATIO * self.target, "LessThanThreshold")
        return high, low

    def describe(self) -> str:
        if self.tracking:
            return f"target tracking {self.metric} = {_num(self.target)}"
        return f"step scaling on {self.alarm.describe()}"


@dataclass(frozen=True)
class Limits:
    """The scalable target: ``register-scalable-target``'s MinCapacity and MaxCapacity, and how long
    a new instance (or copy) takes from the decision until it takes traffic."""

    min_capacity: int
    max_capacity: int
    startup_s: float = 300.0


def load_policies(path: str | Path, option: str = "--policy", component: bool = False) -> list[Policy]:
    """The policies of a JSON file (what calibration writes, a put-scaling-policy request, the output
    of describe-scaling-policies, or a list of these); UsageError naming ``option`` on any problem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UsageError(option, f"cannot read {path}: {err.strerror or err}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UsageError(option, f"{path} is larger than 1 MiB: not a scaling policy")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise UsageError(option, f"{path} is not JSON: {err}") from None
    return parse_policies(doc, f"{option} {path.name}", path.stem, component)


def parse_policies(doc: Any, where: str, name: str = "policy", component: bool = False) -> list[Policy]:
    """Policies from a parsed document (see :func:`load_policies`); UsageError("<where>", ...)."""
    if (
        isinstance(doc, dict) and "ScalingPolicies" in doc
    ):  # aws application-autoscaling describe-scaling-policies
        doc = doc["ScalingPolicies"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise UsageError(where, "holds no scaling policy")
    policies = []
    for i, item in enumerate(items):
        label = name if len(items) == 1 else f"{name}[{i}]"
        policies.append(parse_policy(item, f"{where}[{i}]" if len(items) > 1 else where, label, component))
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise UsageError(where, f"two policies named {sorted({n for n in names if names.count(n) > 1})[0]!r}")
    return policies


_REQUEST_KEYS = (
    "PolicyName",
    "PolicyType",
    "ServiceNamespace",
    "ResourceId",
    "ScalableDimension",
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
    "Alarm",
    "PolicyARN",
    "Alarms",
    "CreationTime",
)  # the last three: describe-scaling-policies' output


def parse_policy(doc: Any, where: str, name: str = "policy", component: bool = False) -> Policy:
    """One policy: a bare ``TargetTrackingScalingPolicyConfiguration`` (calibration's files) or a
    put-scaling-policy request ({PolicyType, ...Configuration}); step scaling adds ``Alarm``, the
    put-metric-alarm definition of the alarm that triggers it."""
    if not isinstance(doc, dict):
        raise UsageError(where, "a scaling policy must be a JSON object")
    if "TargetValue" in doc:  # the bare configuration, as calibration writes it
        config = _shape(doc, "TargetTrackingScalingPolicyConfiguration", where)
        return _target_tracking(config, where, name, doc, component)
    unknown = [k for k in doc if k not in _REQUEST_KEYS]
    if unknown:
        raise UsageError(
            where,
            f"unknown key {unknown[0]!r}: give a TargetTrackingScalingPolicyConfiguration "
            "(TargetValue, ...) or a put-scaling-policy request (PolicyType, ...Configuration)",
        )
    policy_name = doc.get("PolicyName", name)
    if not isinstance(policy_name, str) or not 1 <= len(policy_name) <= 256:
        raise UsageError(where, "PolicyName must be a string of 1-256 characters")
    if doc.get("ServiceNamespace", "sagemaker") != "sagemaker":
        raise UsageError(
            where, f"ServiceNamespace {doc['ServiceNamespace']!r}: only sagemaker endpoints are modelled"
        )
    dimension = doc.get("ScalableDimension")
    if dimension is not None and dimension not in (VARIANT_DIMENSION, COMPONENT_DIMENSION):
        raise UsageError(
            where, f"ScalableDimension {dimension!r}: use {VARIANT_DIMENSION} or {COMPONENT_DIMENSION}"
        )
    if dimension is not None:
        component = dimension == COMPONENT_DIMENSION
    kind = doc.get(
        "PolicyType",
        "TargetTrackingScaling"
        if "TargetTrackingScalingPolicyConfiguration" in doc
        else "StepScaling"
        if "StepScalingPolicyConfiguration" in doc
        else None,
    )
    if kind == "TargetTrackingScaling":
        if "TargetTrackingScalingPolicyConfiguration" not in doc:
            raise UsageError(
                where, "PolicyType TargetTrackingScaling needs TargetTrackingScalingPolicyConfiguration"
            )
        config = _shape(
            doc["TargetTrackingScalingPolicyConfiguration"],
            "TargetTrackingScalingPolicyConfiguration",
            f"{where}: TargetTrackingScalingPolicyConfiguration",
        )
        return _target_tracking(config, where, policy_name, doc, component)
    if kind == "StepScaling":
        if "StepScalingPolicyConfiguration" not in doc:
            raise UsageError(where, "PolicyType StepScaling needs StepScalingPolicyConfiguration")
        config = _shape(
            doc["StepScalingPolicyConfiguration"],
            "StepScalingPolicyConfiguration",
            f"{where}: StepScalingPolicyConfiguration",
        )
        return _step(config, doc.get("Alarm"), where, policy_name, doc)
    if kind == "PredictiveScaling":
        raise UsageError(where, "PredictiveScaling is not available for SageMaker endpoints")
    raise UsageError(where, "PolicyType must be TargetTrackingScaling or StepScaling")


def _shape(value: Any, shape: str, where: str) -> dict:
    """Check ``value`` against Application Auto Scaling's own service model (botocore's), as the
    SDK does before sending: unknown keys, missing required ones, wrong types."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    try:
        model = _service_shape("application-autoscaling", shape)
        report = ParamValidator().validate(value, model)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
    except ParamValidationError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise UsageError(where, detail.replace("Parameter validation failed:", "").strip()) from None
    return value


_SHAPES: dict = {}


def _service_shape(service: str, shape: str):
    key = (service, shape)
    if key not in _SHAPES:
        # botocore's loader alone: a Session would read the AWS config (AWS_PROFILE, ~/.aws/config)
        # to find its data path, and a user's broken profile is not a broken policy file.
        from botocore.loaders import create_loader
        from botocore.model import ServiceModel

        model = ServiceModel(create_loader().load_service_model(service, "service-2"), service)
        _SHAPES[key] = model.shape_for(shape)
    return _SHAPES[key]


def _cooldown(config: dict, key: str, where: str) -> int:
    value = config.get(key, DEFAULT_COOLDOWN_S)
    if not 0 <= value <= MAX_COOLDOWN_S:
        raise UsageError(where, f"{key} must be between 0 and {MAX_COOLDOWN_S} seconds, not {value}")
    return value


def _target_tracking(config: dict, where: str, name: str, document: dict, component: bool) -> Policy:
    predefined, custom = (
        config.get("PredefinedMetricSpecification"),
        config.get("CustomizedMetricSpecification"),
    )
    if predefined is None and custom is None:
        raise UsageError(where, "give PredefinedMetricSpecification (or CustomizedMetricSpecification)")
    if predefined is not None and custom is not None:
        raise UsageError(
            where, "give PredefinedMetricSpecification or CustomizedMetricSpecification, not both"
        )
    if custom is not None:
        raise UsageError(
            where,
            "CustomizedMetricSpecification is not modelled: use a predefined SageMaker metric "
            f"({', '.join(VARIANT_METRICS + COMPONENT_METRICS)}) or step scaling on an alarm",
        )
    metric = predefined["PredefinedMetricType"]
    allowed = COMPONENT_METRICS if component else VARIANT_METRICS
    if metric not in allowed:
        what = "an inference component" if component else "a production variant"
        raise UsageError(
            where, f"PredefinedMetricType {metric!r} does not scale {what}: use {' or '.join(allowed)}"
        )
    target = config["TargetValue"]
    if not 0 < target <= MAX_TARGET or math.isnan(target):
        raise UsageError(where, f"TargetValue must be a number above 0, not {target}")
    return Policy(
        name=name,
        type="TargetTrackingScaling",
        document=document,
        metric=metric,
        target=float(target),
        scale_out_cooldown_s=_cooldown(config, "ScaleOutCooldown", where),
        scale_in_cooldown_s=_cooldown(config, "ScaleInCooldown", where),
        disable_scale_in=bool(config.get("DisableScaleIn", False)),
    )


def _step(config: dict, alarm_doc: Any, where: str, name: str, document: dict) -> Policy:
    adjustment_type = config.get("AdjustmentType")
    if adjustment_type is None:
        raise UsageError(
            where,
            f"StepScalingPolicyConfiguration.AdjustmentType is required ({', '.join(ADJUSTMENT_TYPES)})",
        )
    raw_steps = config.get("StepAdjustments") or []
    if not raw_steps:
        raise UsageError(where, "StepScalingPolicyConfiguration.StepAdjustments must hold at least one step")
    steps = sorted(
        (
            Step(s.get("MetricIntervalLowerBound"), s.get("MetricIntervalUpperBound"), s["ScalingAdjustment"])
            for s in raw_steps
        ),
        key=lambda s: -math.inf if s.lower is None else s.lower,
    )
    # Application Auto Scaling's rules: intervals neither overlap nor leave gaps; one open end each way.
    for s in steps:
        if s.lower is not None and s.upper is not None and s.upper <= s.lower:
            raise UsageError(
                where,
                f"a step's MetricIntervalUpperBound ({_num(s.upper)}) must be above its lower "
                f"bound ({_num(s.lower)})",
            )
    for a, b in zip(steps, steps[1:], strict=False):
        if a.upper is None or b.lower is None or a.upper != b.lower:
            raise UsageError(
                where,
                "StepAdjustments must not overlap or leave gaps: each step's "
                "MetricIntervalLowerBound is the previous step's MetricIntervalUpperBound",
            )
    if steps[0].lower is not None and steps[-1].upper is not None:
        raise UsageError(
            where,
            "StepAdjustments need an open end: a null MetricIntervalLowerBound or MetricIntervalUpperBound",
        )
    magnitude = config.get("MinAdjustmentMagnitude")
    if magnitude is not None and adjustment_type != "PercentChangeInCapacity":
        raise UsageError(where, "MinAdjustmentMagnitude applies only to PercentChangeInCapacity")
    if adjustment_type == "ExactCapacity" and any(s.adjustment < 0 for s in steps):
        raise UsageError(where, "ExactCapacity steps must not be negative")
    alarm = _alarm(alarm_doc, f"{where}: Alarm")
    return Policy(
        name=name,
        type="StepScaling",
        document=document,
        alarm=alarm,
        adjustment_type=adjustment_type,
        steps=tuple(steps),
        min_adjustment_magnitude=magnitude,
        cooldown_s=_cooldown(config, "Cooldown", where),
    )


_ALARM_KEYS = (
    "MetricName",
    "Namespace",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "Dimensions",
    "AlarmName",
    "TreatMissingData",
)


def _alarm(doc: Any, where: str) -> Alarm:
    if doc is None:
        raise UsageError(
            where,
            'step scaling needs the alarm that triggers it: add "Alarm" with MetricName, '
            "Statistic, Period, EvaluationPeriods, Threshold and ComparisonOperator "
            "(as put-metric-alarm takes them)",
        )
    if not isinstance(doc, dict):
        raise UsageError(where, "must be an object (a put-metric-alarm definition)")
    unknown = [k for k in doc if k not in _ALARM_KEYS]
    if unknown:
        raise UsageError(where, f"unknown or unmodelled key {unknown[0]!r} (use {', '.join(_ALARM_KEYS)})")
    request = {"AlarmName": "smload", **{k: v for k, v in doc.items() if k != "AlarmName"}}
    request.setdefault("Namespace", "AWS/SageMaker")
    for key in ("MetricName", "Statistic", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator"):
        if key not in request:
            raise UsageError(where, f"{key} is required")
    _shape_cloudwatch(request, where)
    if request["Namespace"] != "AWS/SageMaker" or request["MetricName"] not in CLOUDWATCH_METRICS:
        raise UsageError(
            where,
            f"the metric must be AWS/SageMaker {', '.join(CLOUDWATCH_METRICS)} "
            f"(not {request['Namespace']} {request['MetricName']})",
        )
    kind = CLOUDWATCH_METRICS[request["MetricName"]]
    if request["Statistic"] not in _STATISTICS[kind]:
        raise UsageError(
            where, f"Statistic for {request['MetricName']} must be {' or '.join(_STATISTICS[kind])}"
        )
    period = request["Period"]
    if not (period in (10, 30) or (period % 60 == 0 and 60 <= period <= 3600)):
        raise UsageError(where, "Period must be 10, 30 or a multiple of 60 seconds up to 3600")
    if period == 30:
        raise UsageError(where, "Period 30 is not modelled: use 10 or a multiple of 60")
    if kind != "concurrency" and period < 60:
        raise UsageError(
            where, f"{request['MetricName']} is a one-minute metric: Period must be a multiple of 60"
        )
    n = request["EvaluationPeriods"]
    m = request.get("DatapointsToAlarm", n)
    if not 1 <= m <= n or n * period > 86400:
        raise UsageError(
            where,
            "need 1 <= DatapointsToAlarm <= EvaluationPeriods and EvaluationPeriods x Period <= 86400 s",
        )
    if request["ComparisonOperator"] not in COMPARISONS:
        raise UsageError(where, f"ComparisonOperator must be one of {', '.join(COMPARISONS)}")
    return Alarm(
        request["MetricName"],
        request["Statistic"],
        period,
        n,
        m,
        float(request["Threshold"]),
        request["ComparisonOperator"],
    )


def _shape_cloudwatch(request: dict, where: str) -> None:
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(request, _service_shape("cloudwatch", "PutMetricAlarmInput"))
    if report.has_errors():
        lines = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
        raise UsageError(where, lines[0])


def check_limits(limits: Limits, policies: list[Policy], where: str) -> Limits:
    if not 0 <= limits.min_capacity <= limits.max_capacity <= MAX_CAPACITY:
        raise UsageError(
            where,
            f"need 0 <= min capacity ({limits.min_capacity}) <= max capacity "
            f"({limits.max_capacity}) <= {MAX_CAPACITY}",
        )
    if limits.min_capacity == 0 and any(p.tracking and p.metric in VARIANT_METRICS for p in policies):
        raise UsageError(
            where, "min capacity 0 (scale to zero) is not modelled for production variants: use 1 or more"
        )
    if not 0 <= limits.startup_s <= 86400:
        raise UsageError(where, f"the instance start-up time must be 0-86400 s, not {limits.startup_s}")
    return limits


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ---------------------------------------------------------------------------------------------
# The scaler


@dataclass
class Window:
    """What the endpoint did during one 10-second window of policy time."""

    end: float  # policy seconds; a multiple of WINDOW_S
    invocations: float = 0.0  # requests that reached the model
    per_instance: float = 0.0  # sum over those requests of 1 / instances in service (InvocationsPerInstance)
    concurrency: float = 0.0  # mean requests in flight per instance, queued ones included
    concurrency_max: float = 0.0
    instances: int = 1  # in service: what ``concurrency`` is per


@dataclass
class Activity:
    """A capacity change: decided at ``time``, complete (in service, or drained) at ``ready``."""

    time: float
    old: int
    new: int
    reason: str
    policy: str
    ready: float | None = None  # None while in progress
    index: int = field(default=0, repr=False)  # the policy's place in the scaler's list

    @property
    def out(self) -> bool:
        return self.new > self.old

    def as_dict(self) -> dict:
        return {
            "time": round(self.time, 3),
            "from": self.old,
            "to": self.new,
            "reason": self.reason,
            "policy": self.policy,
            "ready": None if self.ready is None else round(self.ready, 3),
        }


@dataclass
class _AlarmState:
    alarm: Alarm
    values: deque = field(default_factory=deque)  # the last evaluation_periods datapoints (None: missing)
    state: str = "INSUFFICIENT_DATA"
    last_invoked: float = -math.inf
    served_by: float = 1.0  # the instances in service behind the latest datapoint (its load / its value)

    @property
    def latest(self) -> float | None:
        return self.values[-1] if self.values else None

    def add(self, value: float | None, served_by: float = 1.0) -> None:
        self.values.append(value)
        self.served_by = served_by
        while len(self.values) > self.alarm.evaluation_periods:
            self.values.popleft()
        breaching = sum(
            1
            for v in self.values
            if v is not None and COMPARISONS[self.alarm.comparison](v, self.alarm.threshold)
        )
        if breaching >= self.alarm.datapoints:
            self.state = "ALARM"
        elif len(self.values) == self.alarm.evaluation_periods or any(v is not None for v in self.values):
            self.state = "OK"


class Scaler:
    """One scalable target (a variant or inference component) under its policies."""

    def __init__(self, policies: list[Policy], limits: Limits, instances: int, start: float = 0.0) -> None:
        if not policies:
            raise ValueError("a scaler needs at least one policy")
        self.policies = policies
        self.limits = limits
        self.desired = self.in_service = max(limits.min_capacity, min(limits.max_capacity, instances))
        self.activity: Activity | None = None  # in progress: the endpoint is Updating
        self.activities: list[Activity] = []
        self.windows: deque[Window] = deque(
            maxlen=max(a.period_s * a.evaluation_periods for p in policies for a in p.alarms() if a)
            // WINDOW_S
            + 1
        )
        self.alarms = [[_AlarmState(a) for a in p.alarms() if a is not None] for p in policies]
        self.out_cooldown_until = -math.inf  # a scale-out's cooldown, and the capacity it set
        self.out_cooldown_base = 0
        self.in_cooldown_until = -math.inf
        self.step_cooldown_until = [-math.inf] * len(policies)
        self.step_base = [0] * len(policies)
        self.now = start

    @property
    def updating(self) -> bool:
        return self.activity is not None

    # --- the metrics -----------------------------------------------------------------------------

    def close(self, window: Window) -> list[Activity]:
        """A 10-second window ended: build datapoints, evaluate alarms, maybe start an activity."""
        self.now = window.end
        self.windows.append(window)
        started: list[Activity] = []
        due: list[tuple[int, _AlarmState]] = []
        for i, states in enumerate(self.alarms):
            for state in states:
                if _on_boundary(window.end, state.alarm.period_s):
                    before = state.state
                    state.add(*self._datapoint(state.alarm))
                    if state.state == "ALARM" and (
                        before != "ALARM" or window.end - state.last_invoked >= REINVOKE_S
                    ):
                        due.append((i, state))
        for i, state in due:
            state.last_invoked = window.end
            activity = self._invoke(i, state)
            if activity is not None:
                started.append(activity)
        return started

    def _datapoint(self, alarm: Alarm) -> tuple[float | None, float]:
        """The alarm's datapoint for the period that just ended, and how many instances served it
        (the metric's load divided by its value: a per-instance metric measured while instances
        joined or left reflects the ones that served it, not those in service now)."""
        n = alarm.period_s // WINDOW_S
        windows = list(self.windows)[-n:]
        kind = alarm.kind
        if kind == "concurrency":
            load = sum(w.concurrency * w.instances for w in windows) / len(windows)
            if alarm.statistic == "Maximum":
                value = max(w.concurrency_max for w in windows)
            else:
                value = sum(w.concurrency for w in windows) / len(windows)
            return value, load / value if value > 0 else float(self.in_service)
        invocations = sum(w.invocations for w in windows)
        if invocations <= 0:
            return None, float(self.in_service)  # no invocations: SageMaker publishes no datapoint
        if kind == "per_instance":
            value = sum(w.per_instance for w in windows)
            return value, invocations / value
        return invocations, float(self.in_service)

    # --- decisions ----------------------------------------------------------------------------

    def _invoke(self, i: int, state: _AlarmState) -> Activity | None:
        if self.updating:
            return None  # the endpoint is Updating: UpdateEndpointWeightsAndCapacities would be refused
        policy = self.policies[i]
        value = state.latest
        if value is None:
            return None
        if policy.tracking:
            return self._track(i, state, value)
        return self._step(i, value)

    @staticmethod
    def _proposal(policy: Policy, state: _AlarmState) -> int:
        """Proportional: the instances that served the datapoint x metric / target, i.e. the load
        it measured over the target per instance."""
        return math.ceil(round(max(state.served_by, 1e-9) * state.latest / policy.target, 9))

    def _track(self, i: int, state: _AlarmState, value: float) -> Activity | None:
        policy = self.policies[i]
        proposal = self._proposal(policy, state)
        served = _num(round(state.served_by, 2))
        high = state is self.alarms[i][0]
        limits = self.limits
        if high:
            floor = self.desired
            if self.now < self.out_cooldown_until:
                floor = max(floor, self.out_cooldown_base)
            new = min(limits.max_capacity, proposal)
            if new <= floor:
                return None
            return self._start(
                new,
                policy,
                f"{policy.metric} {_num(round(value, 3))} > target {_num(policy.target)} "
                f"for {state.alarm.datapoints} x {state.alarm.period_s} s: "
                f"ceil({served} x {_num(round(value, 3))} / {_num(policy.target)}) = {proposal}",
            )
        if policy.disable_scale_in or self.now < self.in_cooldown_until:
            return None
        # scale in only if every target-tracking policy that may scale in is ready to
        proposals = []
        for j, other in enumerate(self.policies):
            if not other.tracking or other.disable_scale_in:
                continue
            low = self.alarms[j][1]
            if low.state != "ALARM" or low.latest is None:
                return None
            proposals.append(self._proposal(other, low))
        new = max(limits.min_capacity, max(proposals))
        if new >= self.desired:
            return None
        return self._start(
            new,
            policy,
            f"{policy.metric} {_num(round(value, 3))} < {_num(SCALE_IN_RATIO * policy.target)} "
            f"(90% of target) for {state.alarm.datapoints} x {state.alarm.period_s} s: "
            f"ceil({served} x {_num(round(value, 3))} / {_num(policy.target)}) = {proposal}",
        )

    def _step(self, i: int, value: float) -> Activity | None:
        policy = self.policies[i]
        delta = value - policy.alarm.threshold
        step = next(
            (
                s
                for s in policy.steps
                if (s.lower is None or delta >= s.lower) and (s.upper is None or delta < s.upper)
            ),
            None,
        )
        if step is None:
            return None
        cooling = self.now < self.step_cooldown_until[i]
        base = self.step_base[i] if cooling else self.desired
        if policy.adjustment_type == "ExactCapacity":
            new = step.adjustment
        elif policy.adjustment_type == "ChangeInCapacity":
            new = base + step.adjustment
        else:
            change = base * step.adjustment / 100.0
            # Application Auto Scaling rounds a fraction towards zero, but never to no change at all
            magnitude = max(1, math.floor(abs(change)))
            if policy.min_adjustment_magnitude:
                magnitude = max(magnitude, policy.min_adjustment_magnitude)
            new = base + int(math.copysign(magnitude, change)) if change else base
        new = max(self.limits.min_capacity, min(self.limits.max_capacity, new))
        if (
            new == self.desired
            or (new < self.desired and cooling)
            or (new > self.desired and cooling and new <= base)
        ):
            return None
        return self._start(
            new,
            policy,
            f"{policy.alarm.describe()} (last {_num(round(value, 3))}): "
            f"{policy.adjustment_type} {step.adjustment:+d}"
            if policy.adjustment_type != "ExactCapacity"
            else f"{policy.alarm.describe()} (last {_num(round(value, 3))}): ExactCapacity {step.adjustment}",
        )

    def _start(self, new: int, policy: Policy, reason: str) -> Activity:
        activity = Activity(
            self.now, self.desired, new, reason, policy.name, index=self.policies.index(policy)
        )
        self.activity = activity
        self.activities.append(activity)
        self.desired = new
        if new < activity.old:
            self.in_service = new  # removed instances take no new requests; they finish what they hold
        return activity

    def ready_at(self, activity: Activity) -> float:
        """When a scale-out's instances take traffic (a scale-in completes when drained: the caller says)."""
        return activity.time + self.limits.startup_s

    def complete(self, activity: Activity, now: float) -> None:
        """The activity's instances are in service (scale-out) or drained (scale-in): cooldowns start."""
        activity.ready = now
        if self.activity is activity:
            self.activity = None
        j = activity.index
        policy = self.policies[j]
        if activity.out:
            self.in_service = activity.new
            if policy.tracking:
                self.out_cooldown_until = now + policy.scale_out_cooldown_s
                self.out_cooldown_base = activity.new
                self.in_cooldown_until = -math.inf  # a scale-out ends a scale-in cooldown
            else:
                self.step_cooldown_until[j] = now + policy.cooldown_s
                self.step_base[j] = activity.new
        else:
            if policy.tracking:
                self.in_cooldown_until = now + policy.scale_in_cooldown_s
            else:
                self.step_cooldown_until[j] = now + policy.cooldown_s
                self.step_base[j] = activity.new

    def state(self) -> dict:
        return {
            "desired": self.desired,
            "in_service": self.in_service,
            "updating": self.updating,
            "alarms": {
                f"{p.name}:{'out' if k == 0 else 'in'}": s.state
                for p, states in zip(self.policies, self.alarms, strict=True)
                for k, s in enumerate(states)
            },
        }


def _on_boundary(t: float, period: int) -> bool:
    return abs(t / period - round(t / period)) < 1e-6
