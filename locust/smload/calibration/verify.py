"""``smload autoscaling verify``: run a traffic profile open-loop against the endpoint (the emulator
or AWS) while polling its instance counts (``DescribeEndpoint``), then put what it did next to what
the simulation of the same policy predicts.

    smload autoscaling verify --endpoint-name NAME --payload PATH --profile FILE --calibration calibration.json
                              [--endpoint-url URL] [--region R] [--policy FILE ...] [--check EXPR ...]
                              [--output DIR] [any simulate option] [-- any smload run option]

The policy, its limits, the instance start-up time and the time scale are the endpoint's own: the
emulator's ``/_emulator/config``, or on AWS Application Auto Scaling's scalable target and policies
(``--policy`` and the limit options override). Against the emulator, verify resets it first (its
counters and its autoscaling start over) and compresses the profile by its ``time_scale``: shorter
stages, the same rates. The load is ``smload run --rate-profile`` (open loop: arrivals keep their
pace whatever the endpoint does), with ``--check`` applied as in any run: exit 3 when a check fails.

Observed: scaling activities and instance-hours from the polls; per-minute requests, errors and
latency from the emulator's per-window timeline (``GET /_emulator/autoscaling``) or, on AWS,
CloudWatch (``Invocations``, ``Invocation4XXErrors``/``5XXErrors``, ``ModelLatency`` p50/p99);
the scale-out lag (from the load outgrowing the instances in service to the new ones in service).
Written to ``--output``: ``verify.json``, ``verify.html``, the run's own report in ``run/``.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from smload import exit_codes, scaling
from smload.usage import UsageError

from . import observed, traffic

KIND = "autoscaling-verification"
RUN_GRACE_S = 120.0  # past the profile's end: time for the run to start, drain and write its report
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(sub: Any, add_common: Any) -> None:
    from .inputs import positive

    p = sub.add_parser(
        "verify",
        help="run a profile open-loop against the endpoint; observed vs simulated",
        description="Run a traffic profile open-loop against an endpoint while polling its instance "
        "count; compare what it did with the simulation of the same policy.",
    )
    add_common(p)
    p.add_argument("--endpoint-name", required=True, help="the endpoint")
    p.add_argument("--endpoint-url", help="its runtime URL (the emulator: http://127.0.0.1:8080)")
    p.add_argument("--region", help="AWS region (default: botocore's)")
    p.add_argument(
        "--payload", required=True, metavar="PATH", help="request bodies, as smload run takes them"
    )
    p.add_argument(
        "--profile", required=True, metavar="FILE", help="the traffic: a rate profile (open-loop format)"
    )
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="the policy in force, to simulate (default: the endpoint's own)",
    )
    p.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="EXPR",
        help='a pass/fail check of the run, e.g. "error_rate<1%%" (exit 3 when one fails)',
    )
    p.add_argument(
        "--cloudwatch-wait",
        type=positive(float, 3600),
        default=300.0,
        metavar="SECONDS",
        help="on AWS: how long to wait for the run's last minute in CloudWatch (default 300)",
    )
    p.add_argument(
        "--output",
        default="autoscaling-verify",
        metavar="DIR",
        help="where verify.json, verify.html and the run's report go (default ./autoscaling-verify)",
    )
    p.add_argument(
        "locust_args",
        nargs=argparse.REMAINDER,
        help="after --: more smload run options (e.g. -- --processes 2 --max-in-flight 2000)",
    )


# ---------------------------------------------------------------------------------------------
# The endpoint: the emulator (its control API) or AWS (Application Auto Scaling and CloudWatch)


class Endpoint:
    """What verify needs from the endpoint, whichever it is."""

    emulator = False
    time_scale = 1.0

    def __init__(self, name: str, variant: str) -> None:
        self.name = name
        self.variant = variant
        self.policies: list[scaling.Policy] = []
        self.limits: scaling.Limits | None = None


class Emulated(Endpoint):
    emulator = True

    def __init__(self, name: str, variant: str, url: str, config: dict) -> None:
        super().__init__(name, variant)
        self.url = url.rstrip("/")
        self.time_scale = float(config.get("time_scale", 1.0))
        endpoint = next((e for e in config.get("endpoints", []) if e.get("name") == name), None)
        if endpoint is None:
            raise UsageError("--endpoint-name", f"the emulator at {url} has no endpoint {name!r}")
        found = next((v for v in endpoint.get("variants", []) if v.get("name") == variant), None)
        if found is None:
            raise UsageError("--variant", f"the emulator's endpoint {name} has no variant {variant!r}")
        block = found.get("autoscaling")
        if block is None:
            raise UsageError(
                "--endpoint-name",
                f"{name}/{variant} has no autoscaling in the emulator's configuration: "
                "add an autoscaling block (emulator/examples/autoscaling.yaml)",
            )
        self.policies = [
            p
            for doc in block["policies"]
            for p in scaling.parse_policies(doc["document"], "the emulator's policy", doc["name"])
        ]
        self.limits = scaling.Limits(block["min_capacity"], block["max_capacity"], block["startup_s"])

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:  # noqa: S310 - our own URL
            return json.loads(answer.read())

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_emulator/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            answer.read()

    def state(self) -> dict:
        return self.get("/_emulator/autoscaling")["endpoints"][self.name]["variants"][self.variant]

    def errors(self) -> tuple[int, int]:
        variant = self.get("/_emulator/stats")["endpoints"][self.name]["variants"][self.variant]
        return variant["requests"], sum(variant["errors"].values())


def emulator_config(url: str | None) -> dict | None:
    """The emulator's effective configuration, if ``url`` is an emulator on this machine."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        return None
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_emulator/config", timeout=5) as answer:  # noqa: S310
            return json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Aws(Endpoint):
    def __init__(self, name: str, variant: str, session: Any, region: str) -> None:
        super().__init__(name, variant)
        self.session, self.region = session, region
        client = self.client("application-autoscaling")
        resource = f"endpoint/{name}/variant/{variant}"
        try:
            targets = client.describe_scalable_targets(
                ServiceNamespace="sagemaker",
                ResourceIds=[resource],
                ScalableDimension=scaling.VARIANT_DIMENSION,
            )["ScalableTargets"]
            described = client.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=scaling.VARIANT_DIMENSION
            )
        except Exception as err:  # ClientError, credentials, connection: one line for the user
            raise UsageError(
                "--endpoint-name", f"Application Auto Scaling for {resource} failed: {err}"
            ) from None
        if targets:
            self.limits = scaling.Limits(targets[0]["MinCapacity"], targets[0]["MaxCapacity"])
        live = [
            p for p in described.get("ScalingPolicies", []) if p.get("PolicyType") == "TargetTrackingScaling"
        ]
        if live:
            self.policies = scaling.parse_policies({"ScalingPolicies": live}, "the endpoint's policy")

    def client(self, service: str) -> Any:
        from botocore.config import Config

        return self.session.create_client(
            service,
            region_name=self.region,
            config=Config(connect_timeout=5, read_timeout=15, retries={"total_max_attempts": 3}),
        )


# ---------------------------------------------------------------------------------------------
# Polling DescribeEndpoint while the load runs


class Poller(threading.Thread):
    def __init__(self, client: Any, endpoint: str, variant: str, interval: float, clock: Any) -> None:
        super().__init__(daemon=True, name="describe-endpoint")
        self.client, self.endpoint, self.variant = client, endpoint, variant
        self.interval, self.clock = interval, clock
        self.polls: list[tuple[float, int, int]] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            try:
                described = self.client.describe_endpoint(EndpointName=self.endpoint)
                variant = next(v for v in described["ProductionVariants"] if v["VariantName"] == self.variant)
                self.polls.append(
                    (
                        self.clock(),
                        int(variant.get("CurrentInstanceCount", 0)),
                        int(variant.get("DesiredInstanceCount", variant.get("CurrentInstanceCount", 0))),
                    )
                )
            except Exception as err:  # noqa: BLE001 - a failed poll is noted, not fatal
                if len(self.failures) < 20:
                    self.failures.append(str(err))
            self.done.wait(max(0.0, self.interval - (time.monotonic() - started)))


# ---------------------------------------------------------------------------------------------
# The command


def main(args: argparse.Namespace) -> int:  # noqa: C901 - one pipeline, written down in order
    from smload.invoke import aws
    from smload.results import reports
    from smload.results.checks import parse_all

    from .inputs import RESOLUTIONS, Setup

    setup = Setup(args, args.endpoint_name)
    variant = setup.cap.variant
    parse_all(args.check, "--check")  # a bad check: exit 2 before anything is sent
    load = traffic.from_file(args.profile)
    extra = [a for a in args.locust_args if a != "--"]
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError("--output", f"{output} exists and is not a directory")
    session = aws.session()
    config = emulator_config(args.endpoint_url)
    if config is not None:
        endpoint: Endpoint = Emulated(args.endpoint_name, variant, args.endpoint_url, config)
        region = args.region or aws.default_region(session) or "us-east-1"
        control_url = endpoint.url
    else:
        region = args.region or aws.default_region(session)
        if not region:
            raise UsageError("--region", "no AWS region: give --region or set AWS_REGION")
        endpoint = Aws(args.endpoint_name, variant, session, region)
        control_url = None
    k = endpoint.time_scale  # the emulator's; AWS's clock is the wall clock
    policies = [p for f in args.policy for p in scaling.load_policies(f)] or endpoint.policies
    if not policies:
        raise UsageError(
            "--policy",
            f"{args.endpoint_name}/{variant} has no target-tracking policy to simulate: give --policy FILE",
        )
    limits = endpoint.limits or setup.limits
    startup = args.startup_time if args.startup_time is not None else limits.startup_s
    limits = scaling.Limits(
        args.min_capacity or limits.min_capacity, args.max_capacity or limits.max_capacity, startup
    )
    scaling.check_limits(limits, policies, "--min-capacity")
    from botocore.config import Config

    describe = session.create_client(
        "sagemaker",
        region_name=region,
        endpoint_url=control_url,
        config=Config(connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2}),
    )
    try:
        first = describe.describe_endpoint(EndpointName=args.endpoint_name)
    except Exception as err:  # noqa: BLE001 - one line, exit 2, before any load
        raise UsageError(
            "--endpoint-name", f"DescribeEndpoint {args.endpoint_name!r} failed: {err}"
        ) from None
    if not any(v["VariantName"] == variant for v in first.get("ProductionVariants", [])):
        raise UsageError("--variant", f"{args.endpoint_name} has no production variant {variant!r}")

    # --- the run: a compressed profile, open loop, polled
    output.mkdir(parents=True, exist_ok=True)
    profile_file = output / "profile.json"
    profile_file.write_text(json.dumps(load.compressed(k), indent=2) + "\n")
    run_dir = output / "run"
    seconds = load.duration_s / k
    command = [
        sys.executable,
        "-m",
        "smload.cli",
        "run",
        "--headless",
        "--endpoint-name",
        args.endpoint_name,
        "--payload",
        args.payload,
        "--rate-profile",
        str(profile_file),
        "--arrival",
        args.arrival,
        "--report",
        str(run_dir),
    ]
    if args.endpoint_url:
        command += ["--endpoint-url", args.endpoint_url]
    if args.region:
        command += ["--region", args.region]
    for check in args.check:
        command += ["--check", check]
    command += extra
    if endpoint.emulator:
        endpoint.reset()
    epoch = time.monotonic()
    wall_epoch = time.time()
    poller = Poller(
        describe,
        args.endpoint_name,
        variant,
        max(0.05, scaling.WINDOW_S / k / 2),
        lambda: (time.monotonic() - epoch) * k,
    )
    poller.start()
    log = open(output / "run.log", "wb")  # noqa: SIM115 - closed below
    try:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        code = _wait(process, seconds + RUN_GRACE_S)
    finally:
        poller.done.set()
        poller.join(timeout=30)
        log.close()
    end = (time.monotonic() - epoch) * k
    if code == exit_codes.USAGE:
        sys.stderr.write((output / "run.log").read_text(errors="replace")[-2000:])
        return code

    # --- what was observed, in policy time since the profile started
    run_report = _read_json(run_dir / "report.json")
    if endpoint.emulator:
        state = endpoint.state()
        offset = state.get("first_arrival_s") or 0.0  # the emulator's clock started at its reset
        served, failed = endpoint.errors()
        minutes = observed.minutes_from_windows(state["timeline"], offset, load.duration_s)
        exact_events = [
            dict(e, time=e["time"] - offset, ready=None if e["ready"] is None else e["ready"] - offset)
            for e in state["scaling_events"]
        ]
        polls = [(t - offset, c, d) for t, c, d in poller.polls]
    else:  # CloudWatch's periods start on the minute: the simulation's clock starts on the one before the load
        started = _started_at(run_report) or wall_epoch
        boundary = math.floor(started / 60) * 60
        offset = started - boundary
        minutes = cloudwatch_minutes(
            endpoint, boundary, load.duration_s + offset, args.cloudwatch_wait, offset
        )
        served = failed = exact_events = None
        polls = [(wall_epoch + t - started, c, d) for t, c, d in poller.polls]
    events = observed.events_from_polls(polls)
    observed.judge(minutes, setup.slo, setup.max_error_rate)
    hours = observed.instance_hours([p for p in polls if p[0] >= 0] or polls, load.duration_s)
    seen = observed.summary(
        minutes, exact_events or events, hours, setup.price, errors=failed, requests=served
    )

    # --- the same policy, simulated on the same clock (the compressed run's real rates and counts)
    entry = {
        "name": "simulated",
        "policies": policies,
        "limits": limits,
        "instances": polls[0][2] if polls else setup.instances,
    }
    shifted = load.shifted(offset)
    result = setup.run(entry, shifted, RESOLUTIONS["1m"], args.arrival, time_scale=k)
    sim_events = [
        dict(e, time=e["time"] - offset, ready=None if e["ready"] is None else e["ready"] - offset)
        for e in result.events
    ]
    sim_minutes = [m for m in result.minutes if m["t"] >= offset - 1e-6]
    period = min(a.period_s for p in policies for a in p.alarms() if a is not None)
    changes = observed.compare(exact_events or events, sim_events, period)
    rate = load.rate
    doc = {
        "kind": KIND,
        "endpoint": args.endpoint_name,
        "variant": variant,
        "target": "emulator" if endpoint.emulator else "aws",
        "time_scale": k,
        "offset_s": round(offset, 3),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "traffic": load.describe(),
        "slo": [c.text for c in setup.slo],
        "max_error_rate": setup.max_error_rate,
        "policies": [{"name": p.name, "describe": p.describe(), "document": p.document} for p in policies],
        "limits": {
            "min_capacity": limits.min_capacity,
            "max_capacity": limits.max_capacity,
            "startup_s": limits.startup_s,
        },
        "run": {
            "exit_code": code,
            "report": str(run_dir / "report.json"),
            "command": command,
            "totals": (run_report or {}).get("totals"),
            "checks": (run_report or {}).get("checks"),
            "arrivals": (run_report or {}).get("arrivals"),
            "poll_failures": poller.failures,
        },
        "observed": {
            "events": exact_events or events,
            "polled_events": events,
            "summary": seen,
            "minutes": minutes,
            "lags": observed.lags(exact_events or events, rate, setup.cap.rps_per_instance),
            "polls": {
                "t": [round(t, 3) for t, _, _ in polls],
                "current": [c for _, c, _ in polls],
                "desired": [d for _, _, d in polls],
            },
        },
        "simulated": {
            "events": sim_events,
            "summary": result.summary,
            "minutes": [dict(m, t=m["t"] - offset) for m in sim_minutes],
            "lags": observed.lags(sim_events, rate, setup.cap.rps_per_instance),
        },
        "comparison": {
            "period_s": period,
            "changes": changes,
            "all_within_period": bool(changes) and all(c["within_period"] for c in changes),
            "errors": {
                "observed": seen["errors"],
                "simulated": result.summary["errors"],
                "within_20_percent": observed.within(seen["errors"], result.summary["errors"], 0.2),
            },
            "instance_hours": {
                "observed": seen["instance_hours"],
                "simulated": result.summary["instance_hours"],
            },
        },
        "end_s": round(end - offset, 3),
    }
    paths = reports.write_verification(output, doc)
    _print(doc, paths)
    return code


def _wait(process: subprocess.Popen, limit: float) -> int:
    """The run's exit code. The profile ends the run; should it not have ended ``limit`` seconds
    later, it is stopped as Ctrl-C stops it (it still writes what it measured). Ctrl-C here
    reaches the run too: wait for it to finish."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + RUN_GRACE_S
        except KeyboardInterrupt:
            continue


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _started_at(report: dict | None) -> float | None:
    text = (report or {}).get("started_at")
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cloudwatch_minutes(
    endpoint: Aws, boundary: float, duration: float, wait: float, offset: float
) -> list[dict]:
    """Per-minute Invocations, errors and ModelLatency p50/p99 of the run from CloudWatch, waiting up
    to ``wait`` seconds for its last minute to arrive."""
    client = endpoint.client("cloudwatch")
    start = datetime.fromtimestamp(boundary, UTC)
    end = start + timedelta(seconds=math.ceil(duration / 60) * 60)
    dims = [
        {"Name": "EndpointName", "Value": endpoint.name},
        {"Name": "VariantName", "Value": endpoint.variant},
    ]

    def query(qid: str, metric: str, stat: str) -> dict:
        return {
            "Id": qid,
            "ReturnData": True,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims},
                "Period": 60,
                "Stat": stat,
            },
        }

    queries = [
        query("requests", "Invocations", "Sum"),
        query("e4", "Invocation4XXErrors", "Sum"),
        query("e5", "Invocation5XXErrors", "Sum"),
        query("p50", "ModelLatency", "p50"),
        query("p99", "ModelLatency", "p99"),
    ]
    deadline = time.monotonic() + wait
    while True:
        series: dict[str, dict] = {}
        page = client.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
        for result in page.get("MetricDataResults", []):
            series[result["Id"]] = {
                stamp.timestamp(): value
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            }
        last = end.timestamp() - 60
        if any(t >= last for t in series.get("requests", {})) or time.monotonic() > deadline:
            break
        time.sleep(15)
    minutes = []
    for i in range(int(math.ceil(duration / 60))):
        stamp = boundary + 60 * i
        p50, p99 = series.get("p50", {}).get(stamp), series.get("p99", {}).get(stamp)
        minutes.append(
            {
                "t": 60.0 * i - offset,
                "requests": int(series.get("requests", {}).get(stamp, 0)),
                "errors": int(series.get("e4", {}).get(stamp, 0) + series.get("e5", {}).get(stamp, 0)),
                "p50_ms": None if p50 is None else p50 / 1000.0,
                "p99_ms": None if p99 is None else p99 / 1000.0,
                "instances": 0,
            }
        )
    return minutes


def _print(doc: dict, paths: list[Path]) -> None:
    out = sys.stdout
    o, s = doc["observed"]["summary"], doc["simulated"]["summary"]
    out.write(
        f"Verified {doc['endpoint']}/{doc['variant']} ({doc['target']}, time scale {doc['time_scale']:g}) under "
        f"{doc['traffic']['source']}: {', '.join(p['describe'] for p in doc['policies'])}\n\n"
    )
    out.write(f"{'':28}{'observed':>14}{'simulated':>14}\n")
    for label, key, fmt in (
        ("failed requests", "errors", "{:,}"),
        ("SLO-breaking minutes", "slo_violating_minutes", "{}"),
        ("peak p99 ms", "peak_p99_ms", "{:,.1f}"),
        ("instance-hours", "instance_hours", "{:.3f}"),
        ("scale-outs", "scale_outs", "{}"),
        ("scale-ins", "scale_ins", "{}"),
    ):
        cells = ["n/a" if x.get(key) is None else fmt.format(x[key]) for x in (o, s)]
        out.write(f"{label:28}{cells[0]:>14}{cells[1]:>14}\n")
    out.write("\nInstance count changes (policy seconds since the profile started):\n")
    for c in doc["comparison"]["changes"]:
        ob, si = c["observed"], c["simulated"]
        mark = "ok" if c["within_period"] else "DIFFERS"
        out.write(f"  {c['change']}. observed {_change(ob)}; simulated {_change(si)} [{mark}]\n")
    for lag in doc["observed"]["lags"]:
        out.write(
            f"  scale-out {lag['from']}->{lag['to']}: the load outgrew {lag['from']} instance(s) at "
            f"{_t(lag['onset'])} s; decided {_t(lag['detect_s'])} s later, in service {_t(lag['lag_s'])} s after\n"
        )
    out.write(f"\nrun exit code {doc['run']['exit_code']}; written: {', '.join(str(p) for p in paths)}\n")


def _change(e: dict | None) -> str:
    return "none" if e is None else f"{e['from']}->{e['to']} at {e['time']:.0f} s, ready {_t(e['ready'])}"


def _t(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"
