"""The run report (``--report DIR``: report.json and report.html) of a TestRun: the measurements per
request name, the failures, the checks, a per-second timeline and the settings."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from locust.argument_parser import default_args_dict

from smload.measure.histogram import Histogram
from smload.record import LATENCY
from smload.results import reports

from . import arrivals
from .verdict import observer

logger = logging.getLogger("smload")


def build(run: Any) -> dict:
    runner = run.runner
    stats = runner.stats
    series = run.measurements.test()
    names = []
    for identity, s in series.items():
        entry = stats.entries.get((identity.name, identity.api))
        names.append(
            reports.NameStats(
                identity.api,
                identity.name,
                s.requests,
                s.failure_count,
                entry.total_rps if entry else 0.0,
                s.timings[LATENCY].copy() if LATENCY in s.timings else Histogram(),
                {kind: h.copy() for kind, h in s.timings.items() if kind != LATENCY},
                dict(s.counts),
                identity.endpoint,
                identity.target,
            )
        )
    everything = observer(run)(None)
    total = reports.NameStats(
        "",
        "all",
        everything.requests,
        everything.failures,
        everything.rps,
        everything.histogram,
        counts={"abandoned": run.measurements.abandoned_test},
        keep_histograms=False,
    )
    failures = [
        (identity.name, error, count) for identity, s in series.items() for error, count in s.failures.items()
    ]
    start = stats.start_time or run.started_at or time.time()
    end = stats.last_request_timestamp or start
    per_second = sorted(stats.total.num_reqs_per_sec)
    seconds = list(range(int(start), int(end) + 1)) if per_second else []
    users = [(round(t - start, 1), n) for t, n in run.users]
    users.append((round(end - start, 1), runner.user_count))
    options = run.environment.parsed_options
    own = set(default_args_dict())
    settings = {
        key: value
        for key, value in sorted(vars(options).items())
        if key not in own and value not in (None, "", [], False)
    }
    settings.update(
        {
            key: getattr(options, key)
            for key in ("num_users", "spawn_rate", "run_time", "processes")
            if getattr(options, key, None) not in (None, "")
        }
    )
    endpoint = run.endpoint
    offered = arrivals.figures(run)
    report = reports.run_report(
        names=names,
        total=total,
        failures=failures,
        checks=run.results,
        timeline={
            "seconds": [t - int(start) for t in seconds],
            "requests": [stats.total.num_reqs_per_sec.get(t, 0) for t in seconds],
            "failures": [stats.total.num_fail_per_sec.get(t, 0) for t in seconds],
            "users": users,
        },
        settings=settings,
        started_at=reports.iso_utc(stats.start_time),
        duration_s=round(end - start, 1),
        users=max([n for _t, n in users] or [0]),
        workers=run.workers_seen if run.role == "master" else None,
        endpoint=endpoint.endpoint_name if endpoint else getattr(options, "endpoint_name", None),
        comparison=[row.as_dict() for row in run.analysis.rows] if run.analysis else [],
        split=run.analysis.split.as_dict() if run.analysis and run.analysis.split else None,
        arrivals=offered.as_dict() if offered is not None else None,
    )
    report["incomplete"] = run.incomplete()
    report["lost_workers"] = [
        {
            "worker": w.name,
            "lost_after_s": round(w.lost_at - start, 1),
            "unreported_estimate": w.unreported_estimate,
        }
        for w in run.measurements.lost.values()
    ]
    return report


def write(run: Any, directory: str) -> None:
    try:
        paths = reports.write_run(directory, build(run))
        logger.info("run report: %s", os.path.abspath(str(paths[-1])))
    except OSError as err:
        logger.error("--report: cannot write %s: %s", directory, err)
