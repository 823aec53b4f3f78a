"""Self-contained HTML reports (Chart.js inlined: no CDN, they work offline) and their JSON twins:
``calibration.html``/``calibration.json`` for ``smload calibrate``, ``report.html``/``report.json``
for ordinary runs (``--report DIR``). The page renders its tables on the server side and draws its
charts from the JSON embedded in it, so the HTML and the JSON always say the same thing.

Import-light: Jinja2 and the standard library only (no Locust).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from smload import errors
from smload.measure.histogram import RELATIVE_ERROR, Histogram
from smload.record import GOODPUT, INPUT_TOKENS, LATENCY, OUTPUT_TOKENS
from smload.version import VERSION

from .checks import Result, format_value

CHART_JS_VERSION = "4.6.1"
REPORT_PERCENTILES = (50, 90, 95, 99, 99.9)


def _asset(package_dir: str, name: str) -> str:
    return resources.files("smload.results").joinpath(package_dir, name).read_text(encoding="utf-8")


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("smload.results", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        fmt=_fmt, pct=_pct, version=VERSION, chart_js_version=CHART_JS_VERSION, level=_level, amount=_amount
    )
    env.filters["pretty_json"] = lambda value: json.dumps(value, indent=2)  # tojson would sort the keys
    env.filters["setting"] = _setting
    return env


def iso_utc(timestamp: float | None) -> str | None:
    """``2025-01-31T12:00:00Z``, or None for a missing time."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _setting(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.2f}%"


def _level(row: dict, value: float | None) -> str:
    """A compared value (report.json ``comparison`` row): ms, or an error rate in %."""
    return _pct(value) if row["unit"] == "fraction" else _fmt(value, 2) + " ms"


def _amount(row: dict, value: float | None) -> str:
    """A difference: ``+4.10 ms``, ``+0.25 pp``."""
    if value is None:
        return "n/a"
    return f"{value * 100:+.2f} pp" if row["unit"] == "fraction" else f"{value:+,.2f} ms"


def _script_json(data: dict) -> str:
    """JSON safe inside <script>: no '</' can close the element early."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _render(template: str, page_js: str, title: str, data: dict) -> str:
    return (
        _templates()
        .get_template(template)
        .render(
            title=title,
            d=data,
            stop_text=data.get("stop_text") or "not finished",
            # Our own files, and JSON made safe for <script>: inserted verbatim, not HTML-escaped.
            css=Markup(_asset("templates", "report.css")),
            chart_js=Markup(_asset("assets", "chart.umd.min.js")),
            common_js=Markup(_asset("templates", "common.js")),
            page_js=Markup(_asset("templates", page_js)),
            data_json=Markup(_script_json(data)),
        )
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path


# --- calibration -------------------------------------------------------------------------------


def render_calibration(summary: dict) -> str:
    title = f"Calibration of {summary.get('endpoint') or 'the endpoint'}"
    return _render("calibration.html.j2", "calibration.js", title, summary)


def write_calibration(directory: str | Path, summary: dict) -> list[Path]:
    """calibration.json, calibration.html, and one file per scaling policy (the commands name them)."""
    out = Path(directory)
    written = [
        _write(out / "calibration.json", json.dumps(summary, indent=2) + "\n"),
        _write(out / "calibration.html", render_calibration(summary)),
    ]
    for variant in ((summary.get("recommendation") or {}).get("variants") or {}).values():
        for kind in ("invocations_per_instance", "concurrency_high_resolution"):
            if kind in variant:
                written.append(
                    _write(
                        out / variant[kind]["policy_file"],
                        json.dumps(variant[kind]["policy"], indent=2) + "\n",
                    )
                )
    return written


# --- ordinary runs -----------------------------------------------------------------------------


@dataclass
class NameStats:
    """One (request type, name) of a run: counts from Locust's stats, latencies from the histogram."""

    type: str
    name: str
    requests: int
    failures: int
    rps: float
    histogram: Histogram = field(default_factory=Histogram)
    timings: dict[str, Histogram] = field(default_factory=dict)  # other kinds (ttfb, ...): "<kind>_ms" maps
    counts: dict[str, int] = field(default_factory=dict)
    endpoint: str | None = None  # the request identity's endpoint and target (variant), when known
    target: str | None = None
    keep_histograms: bool = True  # the exact histograms, for smload compare (Histogram.to_wire per kind)

    def as_dict(self) -> dict:
        h = self.histogram
        out = {
            "type": self.type,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": self.failures / self.requests if self.requests else 0.0,
            "rps": round(self.rps, 3),
        }
        for p in REPORT_PERCENTILES:
            out[f"p{p:g}_ms"] = round(h.quantile(p / 100), 3) if h.count else None
        out["avg_ms"] = round(h.mean, 3) if h.count else None
        out["max_ms"] = round(h.max, 3) if h.count else None
        out.update({f"{kind}_ms": percentiles(timing) for kind, timing in sorted(self.timings.items())})
        counts = dict(self.counts)
        good = counts.pop(GOODPUT, None)
        out.update(sorted(counts.items()))
        if OUTPUT_TOKENS in counts:  # an LLM test
            out.setdefault(INPUT_TOKENS, 0)
            out.update(llm_rates(self.requests, self.rps, counts[OUTPUT_TOKENS], good))
        if self.endpoint is not None:
            out.update(endpoint=self.endpoint, target=self.target)
        if self.keep_histograms:
            out["histograms"] = {
                kind: _sorted_wire(h) for kind, h in [(LATENCY, h), *sorted(self.timings.items())] if h.count
            }
        return out


def llm_rates(requests: int, rps: float, output_tokens: int, good: int | None) -> dict:
    """Output tokens/s and goodput, over the same duration as ``rps`` (requests / rps seconds)."""
    seconds = requests / rps if rps and requests else 0.0
    out: dict = {"output_tokens_per_s": round(output_tokens / seconds, 3) if seconds else 0.0}
    if good is not None:
        out["goodput"] = {
            "requests": good,
            "fraction": round(good / requests, 6) if requests else None,
            "per_s": round(good / seconds, 3) if seconds else 0.0,
        }
    return out


def _sorted_wire(h: Histogram) -> list:
    """``Histogram.to_wire()`` with the buckets in order (any order reads back): a reader can follow it."""
    count, total, low, high, indices, counts = h.to_wire()
    pairs = sorted(zip(indices, counts, strict=True))
    return [count, total, low, high, [i for i, _n in pairs], [n for _i, n in pairs]]


def percentiles(h: Histogram) -> dict:
    """A distribution as the emulator's ground truth shapes it: count, mean, p50, p90, p95, p99, max (ms)."""
    if not h.count:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p95": None, "p99": None, "max": None}
    return {
        "count": h.count,
        "mean": round(h.mean, 3),
        **{f"p{q}": round(h.quantile(q / 100), 3) for q in (50, 90, 95, 99)},
        "max": round(h.max, 3),
    }


def run_report(
    names: list[NameStats],
    total: NameStats,
    failures: list[tuple[str, str, int]],
    checks: list[Result],
    timeline: dict,
    settings: dict,
    started_at: str | None = None,
    duration_s: float | None = None,
    users: int | None = None,
    workers: int | None = None,
    endpoint: str | None = None,
    comparison: list[dict] | None = None,
    split: dict | None = None,
    arrivals: dict | None = None,
) -> dict:
    """report.json: ``failures`` holds (request name, classified error such as ``ModelError(500)``, count);
    ``comparison`` the variants compared (:mod:`.compare` rows), ``split`` the traffic split (:mod:`.split`),
    ``arrivals`` an open-loop test's arrivals (:mod:`smload.run.arrivals`)."""
    error_rows = [
        {"type": errors.base_type(message), "name": name, "error": message, "count": count}
        for name, message, count in failures
    ]
    error_rows.sort(key=lambda row: (-row["count"], row["type"], row["name"]))
    check_rows = [
        {**r.as_dict(), "value_text": format_value(r.check.metric, r.value, r.check.unit)} for r in checks
    ]
    totals = total.as_dict()
    report = {
        "kind": "run",
        "endpoint": endpoint,
        "started_at": started_at,
        "duration_s": duration_s,
        "users": users,
        "workers": workers,
        "totals": totals,
        "names": [n.as_dict() for n in sorted(names, key=lambda n: (n.name, n.type))],
        "errors": error_rows,
        "error_types": _count_by(error_rows),
        "checks": check_rows,
        "checks_passed": all(r.passed for r in checks),
        "comparison": comparison or [],
        "split": split,
        "histogram_relative_error": RELATIVE_ERROR,  # of names[].histograms: what smload compare reads
        "timeline": timeline,
        "settings": settings,
    }
    if arrivals is not None:  # open loop (DESIGN.md: report.json "arrivals")
        report["arrivals"] = arrivals
    return report


def _count_by(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["type"]] = counts.get(row["type"], 0) + row["count"]
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def render_run(report: dict) -> str:
    title = f"Load test of {report.get('endpoint') or 'the endpoint'}"
    return _render("run.html.j2", "run.js", title, report)


def write_run(directory: str | Path, report: dict) -> list[Path]:
    out = Path(directory)
    return [
        _write(out / "report.json", dumps(report) + "\n"),
        _write(out / "report.html", render_run(report)),
    ]


def dumps(value: object, indent: str = "") -> str:
    """JSON indented by two spaces, except that a list of numbers (a histogram's buckets, a timeline)
    stays on one line: json.dumps(indent=2) would give each number a line of its own."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list | tuple) and value:
        if all(_flat(v) for v in value):
            return json.dumps(value, separators=(", ", ": "))
        return "[\n" + ",\n".join(f"{inner}{dumps(v, inner)}" for v in value) + f"\n{indent}]"
    return json.dumps(value)


def _flat(value: object) -> bool:
    """A number, null, or a list of them (a histogram's wire form holds two such lists)."""
    if isinstance(value, list | tuple):
        return all(v is None or isinstance(v, int | float) for v in value)
    return value is None or isinstance(value, int | float)


# --- autoscaling strategy (smload autoscaling simulate) and its verification ---------------------


def render_strategy(doc: dict) -> str:
    title = f"Autoscaling strategy for {doc.get('endpoint') or 'the endpoint'}/{doc.get('variant')}"
    return _render("strategy.html.j2", "strategy.js", title, doc)


def write_strategy(directory: str | Path, doc: dict) -> list[Path]:
    out = Path(directory)
    return [
        _write(out / "strategy.json", json.dumps(doc, indent=2) + "\n"),
        _write(out / "strategy.html", render_strategy(doc)),
    ]


def render_verification(doc: dict) -> str:
    title = f"Autoscaling verified on {doc.get('endpoint') or 'the endpoint'}/{doc.get('variant')}"
    return _render("verify.html.j2", "verify.js", title, doc)


def write_verification(directory: str | Path, doc: dict) -> list[Path]:
    out = Path(directory)
    return [
        _write(out / "verify.json", json.dumps(doc, indent=2) + "\n"),
        _write(out / "verify.html", render_verification(doc)),
    ]
