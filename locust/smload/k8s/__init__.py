"""``smload k8s status|scale|run|stop``: drive a load test installed with the Helm chart, through
the Kubernetes API (the ``kubernetes`` client: kubeconfig or in-cluster) — the release's objects by
their labels, the worker Deployment's scale subresource, and the master's web API through the API
server's service proxy. Never imports Locust.

Exit codes: 0 done, 1 the test failed (request failures) or the cluster did not do what was asked in
time, 2 bad usage or a release that cannot do it, 3 a ``--check`` failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import exit_codes
from ..usage import UsageError
from .api import Api, ApiError
from .connect import connect
from .master import RUNNING_STATES, Master, MasterUnavailable, aggregated, connected_workers
from .release import Release, ReleaseError, find_release

READY_TIMEOUT = 60.0  # seconds for workers to be ready, and for a started test to run
# locust.runners.WORKER_REPORT_INTERVAL; not imported: this command never imports Locust
WORKER_REPORT_INTERVAL = 3.0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--release", required=True, metavar="NAME", help="the Helm release (helm install NAME ...)"
    )
    common.add_argument(
        "--namespace", "-n", metavar="NS", help="default: the kubeconfig context's, else the pod's own"
    )
    common.add_argument(
        "--kubeconfig", metavar="FILE", help="default: $KUBECONFIG, else ~/.kube/config, else in-cluster"
    )
    common.add_argument("--context", metavar="NAME", help="a kubeconfig context other than the current one")

    parser = argparse.ArgumentParser(
        prog="smload k8s", description="Drive a load test installed with the sagemaker-loadtest Helm chart."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{status,scale,run,stop}")
    commands.add_parser("status", parents=[common], help="the release's master, workers and current test")
    scale = commands.add_parser(
        "scale", parents=[common], help="set the number of workers and wait until the master has them"
    )
    scale.add_argument("--workers", type=int, required=True, metavar="N")
    scale.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the workers (default 300)",
    )
    run = commands.add_parser(
        "run", parents=[common], help="run a test through the master, show progress, check, fetch the report"
    )
    run.add_argument("--users", type=int, metavar="N", help="default: the release's locust.users")
    run.add_argument("--spawn-rate", type=float, metavar="R", help="default: the release's locust.spawnRate")
    run.add_argument("--run-time", metavar="TIME", help="e.g. 5m; default: the release's locust.runTime")
    run.add_argument(
        "--arrival-rate",
        type=float,
        metavar="R",
        help="open loop: offer R requests/s in total over the workers, timed from each intended start "
        "(docs/open-loop.md); default: the release's options.arrival-rate. --users is then not needed",
    )
    run.add_argument(
        "--max-in-flight",
        type=int,
        metavar="N",
        help="open loop: at most N requests in flight in total; more arrivals are dropped and counted",
    )
    run.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="EXPR",
        help='a pass/fail condition, e.g. "p95<300ms", repeatable (exit code 3); default: the release\'s locust.checks',
    )
    run.add_argument(
        "--report", metavar="FILE", help="where to save the HTML report (default: <release>-report.html)"
    )
    run.add_argument(
        "--interval", type=float, default=5.0, metavar="SECONDS", help="progress every SECONDS (default 5)"
    )
    commands.add_parser("stop", parents=[common], help="stop the running test")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _validate(args)
        connection = connect(args.kubeconfig, args.context, args.namespace)
        api = Api(connection.configuration)
        try:
            release = find_release(api, connection.namespace, args.release)
            return COMMANDS[args.command](api, release, args)
        finally:
            api.close()
    except UsageError as error:
        return _error(str(error), exit_codes.USAGE)
    except ReleaseError as error:
        return _error(str(error), exit_codes.USAGE)
    except MasterUnavailable as error:
        return _error(str(error), exit_codes.FAILED)
    except ApiError as error:
        hint = " (allowed by the chart's rbac.create=true and rbac.subjects)" if error.status == 403 else ""
        return _error(f"Kubernetes API: {error}{hint}", exit_codes.FAILED)
    except KeyboardInterrupt:
        return 130


def _validate(args: argparse.Namespace) -> None:
    if args.command == "scale" and args.workers < 0:
        raise UsageError("--workers", f"must be 0 or more, not {args.workers}")
    if args.command == "run":
        if args.users is not None and args.users < 0:
            raise UsageError("--users", f"must be 0 or more, not {args.users}")
        if args.spawn_rate is not None and not args.spawn_rate > 0:
            raise UsageError("--spawn-rate", f"must be more than 0, not {args.spawn_rate}")
        if args.arrival_rate is not None and not args.arrival_rate > 0:
            raise UsageError("--arrival-rate", f"must be more than 0, not {args.arrival_rate:g}")
        if args.max_in_flight is not None and args.max_in_flight < 1:
            raise UsageError("--max-in-flight", f"must be 1 or more, not {args.max_in_flight}")
        if args.run_time is not None and _seconds(args.run_time) is None:
            raise UsageError("--run-time", f"{args.run_time!r} is not a time span: use e.g. 90s, 5m, 1h30m")
        if not args.interval > 0:
            raise UsageError("--interval", "must be more than 0")


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"smload k8s: error: {message}\n")
    return code


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# Commands ----------------------------------------------------------------------------------------


def status(api: Api, release: Release, args: argparse.Namespace) -> int:
    _say(f"release {release.name} in namespace {release.namespace}: mode {release.mode}")
    if release.mode == "job":
        for role, job in (("master", release.master), ("workers", release.worker)):
            s = job.get("status", {})
            _say(
                f"{role:<8} job/{job['metadata']['name']}: {s.get('active', 0)} active, {s.get('succeeded', 0)} succeeded, "
                f"{s.get('failed', 0)} failed{_job_verdict(job)}"
            )
        return 0
    owner = (
        f", owned by hpa/{release.hpa['metadata']['name']} ({release.hpa['spec'].get('minReplicas', 1)}-{release.hpa['spec']['maxReplicas']})"
        if release.hpa
        else ""
    )
    master_ready = int(release.master.get("status", {}).get("readyReplicas") or 0)
    _say(f"master   deployment/{release.master['metadata']['name']}: {master_ready}/1 ready")
    _say(
        f"workers  deployment/{release.worker['metadata']['name']}: {release.worker_ready}/{release.worker_replicas} ready{owner}"
    )
    stats = Master(api, release).stats()
    _say(f"test     {_progress(stats)}")
    return 0


def scale(api: Api, release: Release, args: argparse.Namespace) -> int:
    if release.mode == "job":
        raise ReleaseError(
            f"release {release.name!r} runs as Jobs (mode=job): its worker count is fixed by worker.replicas"
        )
    if release.hpa:
        raise ReleaseError(
            f"hpa/{release.hpa['metadata']['name']} owns the worker count: change worker.autoscaling "
            "(helm upgrade), or disable it to scale by hand"
        )
    master = Master(api, release)
    api.merge_patch(release.scale_path(), {"spec": {"replicas": args.workers}})
    _say(
        f"deployment/{release.worker['metadata']['name']} scaled to {args.workers}; waiting for the master to count them"
    )
    seen = _wait(
        lambda: connected_workers(master.stats()),
        lambda n: n == args.workers,
        args.timeout,
        lambda n: _say(f"  {n} workers connected"),
    )
    if seen != args.workers:
        _say(
            f"the master counts {seen} workers, not {args.workers}, after {args.timeout:g}s "
            f"(kubectl -n {release.namespace} get pods -l app.kubernetes.io/instance={release.name})"
        )
        return exit_codes.FAILED
    _say(f"{seen} workers connected")
    return 0


def run(api: Api, release: Release, args: argparse.Namespace) -> int:
    if release.mode == "job":
        raise ReleaseError(
            f"release {release.name!r} runs its test as Jobs (mode=job): wait for job/{release.master['metadata']['name']} instead"
        )
    users, spawn_rate, run_time, checks = _run_settings(release, args)
    open_loop = _open_loop_fields(release, args)
    master = Master(api, release)
    workers = _ready_workers(master, release)

    master.swarm(users, spawn_rate, run_time, open_loop)
    if open_loop.get("arrival_rate"):
        ceiling = open_loop.get("max_in_flight") or release.master_env.get(
            "LOCUST_MAX_IN_FLIGHT", "the default"
        )
        _say(
            f"started: open loop at {float(open_loop['arrival_rate']):g} req/s, at most {ceiling} in flight, "
            f"for {run_time} on {workers} workers"
        )
    else:
        _say(f"started: {users} users at {spawn_rate:g}/s for {run_time} on {workers} workers")
    stats = _follow(master, release, _seconds(run_time) + max(60.0, users / spawn_rate), args.interval)
    if stats is None:
        return exit_codes.FAILED
    stats = _final(master, stats)

    report = Path(args.report or f"{release.name}-report.html")
    report.write_bytes(master.report())
    total = aggregated(stats)
    _say(
        f"done: {total.get('num_requests', 0)} requests, {total.get('num_failures', 0)} failed; report {report}"
    )
    if checks:
        verdict = master.checks(checks)
        for line in verdict["table"]:
            _say(line)
        # As a headless run's verdict (smload.verdict): with checks, they alone say what is acceptable.
        return 0 if verdict["passed"] else exit_codes.CHECK_FAILED
    return exit_codes.FAILED if total.get("num_failures") else 0


def _open_loop_fields(release: Release, args: argparse.Namespace) -> dict[str, str]:
    """The web UI form's open-loop fields: --arrival-rate (else the release's), --max-in-flight. A
    closed-loop run sends an empty rate: Locust keeps a custom parameter a form leaves out, so the
    rate of an earlier open-loop run would stick."""
    rate = (
        args.arrival_rate if args.arrival_rate is not None else release.master_env.get("LOCUST_ARRIVAL_RATE")
    )
    if not rate:
        return {"arrival_rate": ""}
    fields = {"arrival_rate": f"{float(rate):g}"}
    if args.max_in_flight is not None:
        fields["max_in_flight"] = str(args.max_in_flight)
    return fields


def _run_settings(release: Release, args: argparse.Namespace) -> tuple[int, float, str, list[str]]:
    """Users, spawn rate, run time and checks: the options, else what the release configured. In open
    loop the users are the executor pool the master sets itself (--max-in-flight): none needed."""
    defaults = release.master_env
    open_loop = args.arrival_rate is not None or bool(defaults.get("LOCUST_ARRIVAL_RATE"))
    users = args.users if args.users is not None else int(defaults.get("LOCUST_USERS", 0))
    spawn_rate = (
        args.spawn_rate if args.spawn_rate is not None else float(defaults.get("LOCUST_SPAWN_RATE", 1))
    )
    run_time = args.run_time or defaults.get("LOCUST_RUN_TIME")
    if not run_time:
        raise UsageError(
            "--run-time", "required: the release sets no locust.runTime (a test here always ends by itself)"
        )
    if not users and not open_loop:
        raise UsageError("--users", "required: the release sets no locust.users (or give --arrival-rate)")
    return users, spawn_rate, run_time, _checks(args.check or [defaults.get("LOCUST_CHECK", "")])


def _ready_workers(master: Master, release: Release) -> int:
    """The worker pods Kubernetes reports ready, once the master counts all of them ready for a test
    (after a test, a Locust worker rests --stop-timeout seconds, out of the master's list, before
    it takes the next one). Refuses while a test runs."""
    stats = master.stats()
    if stats.get("state") in RUNNING_STATES:
        raise ReleaseError(
            f"a test is already {stats['state']} on {release.name!r}: smload k8s stop --release {release.name} first"
        )
    pods = release.worker_ready
    if not pods:
        raise ReleaseError(
            f"no worker pod of {release.name!r} is ready: smload k8s scale --release {release.name} --workers N"
        )
    if stats.get("worker_count", 0) < pods:
        _say(f"waiting for the master to count the {pods} ready worker pods as ready workers")
        ready = _wait(
            lambda: master.stats().get("worker_count", 0), lambda n: n >= pods, READY_TIMEOUT, lambda n: None
        )
        if ready < pods:
            raise MasterUnavailable(
                f"the master counts {ready} ready workers after {READY_TIMEOUT:g}s, not the {pods} ready "
                f"worker pods (kubectl -n {release.namespace} logs deployment/{release.worker['metadata']['name']})"
            )
    return pods


def _follow(master: Master, release: Release, limit: float, interval: float) -> dict | None:
    """Progress every ``interval`` seconds until the test stops by itself (its run time); the last
    stats, or None when it had to be stopped after ``limit`` seconds."""
    started = time.monotonic()
    seen_running = False
    try:
        while True:
            time.sleep(interval)
            stats = master.stats()
            seen_running = seen_running or stats.get("state") in RUNNING_STATES
            _say(f"  {time.monotonic() - started:5.0f}s {_progress(stats)}")
            if seen_running and stats.get("state") not in RUNNING_STATES:
                return stats
            if not seen_running and time.monotonic() - started > READY_TIMEOUT:
                raise MasterUnavailable(
                    f"the master accepted the test but did not start it in {READY_TIMEOUT:g}s "
                    f"(kubectl -n {release.namespace} logs deployment/{release.master['metadata']['name']})"
                )
            if time.monotonic() - started > limit:
                master.stop()
                _say("the test did not stop by itself at its run time: stopped it")
                return None
    except KeyboardInterrupt:
        master.stop()
        _say("interrupted: test stopped")
        raise


def stop(api: Api, release: Release, args: argparse.Namespace) -> int:
    master = Master(api, release)
    master.stop()
    _say(f"stopped: the master of {release.name} is {master.stats().get('state')}")
    return 0


COMMANDS: dict[str, Callable[[Api, Release, argparse.Namespace], int]] = {
    "status": status,
    "scale": scale,
    "run": run,
    "stop": stop,
}


# Helpers -----------------------------------------------------------------------------------------


def _progress(stats: dict) -> str:
    total = aggregated(stats)
    p95 = (stats.get("current_response_time_percentiles") or {}).get("response_time_percentile_0.95")
    line = (
        f"{stats.get('state')}, {stats.get('user_count', 0)} users on {connected_workers(stats)} workers, "
        f"{total.get('current_rps', 0.0):.1f} req/s, {100 * (stats.get('fail_ratio') or 0.0):.2f}% failed, "
        f"{total.get('num_requests', 0)} requests"
    )
    return line + (f", p95 {p95:g} ms" if p95 else "")


def _final(master: Master, stats: dict) -> dict:
    """The stats once the workers' last reports are in. A worker reports every 3 s (Locust's
    WORKER_REPORT_INTERVAL) and not again at a stop: what it counted since its last report arrives
    with the next one. So wait until the totals hold still for longer than one report interval."""
    settled_after = WORKER_REPORT_INTERVAL + 1.0
    deadline = time.monotonic() + 5 * settled_after
    count, since = aggregated(stats).get("num_requests"), time.monotonic()
    while time.monotonic() - since < settled_after and time.monotonic() < deadline:
        time.sleep(0.5)
        stats = master.stats()
        if aggregated(stats).get("num_requests") != count:
            count, since = aggregated(stats).get("num_requests"), time.monotonic()
    return stats


def _job_verdict(job: dict) -> str:
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return f": {condition['type'].lower()}" + (
                f" ({condition.get('reason')})" if condition.get("reason") else ""
            )
    return ""


def _wait(
    read: Callable[[], int], done: Callable[[int], bool], timeout: float, changed: Callable[[int], None]
) -> int:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        value = read()
        if value != last:
            changed(value)
            last = value
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(1.0)


def _seconds(timespan: str) -> float | None:
    """Locust's time spans: 90, 90s, 5m, 1h30m."""
    import re

    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?|(\d+)", timespan.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds, plain = (int(g) if g else 0 for g in match.groups())
    return float(plain or hours * 3600 + minutes * 60 + seconds)


def _checks(values: list[str]) -> list[str]:
    """The check expressions, each checked here before any load (smload.checks, no Locust import)."""
    from ..results.checks import parse_all

    return [check.text for check in parse_all(values)]
