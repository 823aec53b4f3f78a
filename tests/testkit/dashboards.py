"""Grafana cannot run here: what a Grafana would send to Prometheus for each dashboard panel, so
that a test runs every query against the real Prometheus instead.

Template variables are resolved the way Grafana's Prometheus datasource does (``label_values``,
``query_result``, the variable's regex, "All" as its ``allValue``), in order, each one seeing the
values of those before it; built-in intervals get fixed values that suit a 1 s scrape interval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from testkit.support import REPO

DASHBOARDS = REPO / "helm" / "sagemaker-loadtest" / "dashboards"  # the one source (compose mounts it)
LLM = "llm.json"  # its panels have data during an LLM run only: tests/integration/test_llm_dashboard.py

BUILTINS = {
    "__rate_interval": "10s",
    "__interval": "2s",
    "__range": "5m",
    "__range_s": "300",
    "__interval_ms": "2000",
}
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NOT_METRICS = {
    "sum",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "max",
    "min",
    "avg",
    "count",
    "time",
    "vector",
    "floor",
    "ceil",
    "offset",
    "bool",
    "le",
    "topk",
    "bottomk",
    "clamp_min",
    "clamp_max",
    "abs",
    "label_values",
    "query_result",
}


@dataclass
class Query:
    dashboard: str
    panel: str
    expr: str
    instant: bool


def load() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


OPEN_LOOP_ROW = "Open loop"  # its panels have data in an open-loop test only (--arrival-rate)


def panels(dashboard: dict, rows: Callable[[str | None], bool] = lambda _title: True) -> Iterator[dict]:
    """Every panel, including those inside collapsed rows; ``rows`` picks by row title (None: no row)."""
    row: str | None = None
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title")
            if rows(row):
                yield from panel.get("panels", [])
        elif rows(row):
            yield panel


def queries(
    name: str, dashboard: dict, rows: Callable[[str | None], bool] = lambda _title: True
) -> list[Query]:
    return [
        Query(name, panel["title"], target["expr"], bool(target.get("instant")))
        for panel in panels(dashboard, rows)
        for target in panel.get("targets", [])
    ]


def substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {text!r}")
        return values[name]

    return _VAR.sub(one, text)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (identifiers outside label matchers, strings and
    ranges that are neither functions nor keywords); histogram series map to their family."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no string contents
    bare = re.sub(r"\{[^}]*\}", "{}", bare)  # no label matchers
    bare = re.sub(r"\[[^\]]*\]", "[]", bare)  # no ranges
    bare = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare
    )  # no label lists
    names = set()
    for match in _IDENT.finditer(bare):
        word = match.group(0)
        follows = bare[match.end() :].lstrip()[:1]
        if (
            word in _NOT_METRICS
            or follows == "("
            or bare[match.start() - 1 : match.start()] == "$"
            or word.isdigit()
        ):
            continue
        names.add(
            re.sub(r"_(bucket|sum|count)$", "", word)
            if word.endswith(("_bucket", "_sum", "_count"))
            else word
        )
    return names


def grafana_text(row: dict) -> str:
    """How Grafana's ``query_result()`` prints one result: ``name{labels} value timestamp_ms``."""
    labels = dict(row["metric"])
    name = labels.pop("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    timestamp, value = row["value"]
    return f"{name}{{{inner}}} {value} {int(float(timestamp) * 1000)}"


def resolve_variables(dashboard: dict, prometheus) -> dict[str, str]:
    """Each template variable's value as Grafana would substitute it: "All" (its ``allValue``) for
    a multi-value variable, the first option otherwise. A variable without options is an error."""
    values = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        name = var["name"]
        if var["type"] == "datasource":
            values[name] = "prometheus"
            continue
        assert var["type"] == "query", f"variable {name}: type {var['type']} is not handled here"
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        query = substitute(query, values)
        if match := re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query):
            selector, label = match.groups()
            texts = sorted(
                {row["metric"].get(label) for row in prometheus.query(f"group by ({label}) ({selector})")}
                - {None}
            )
        elif match := re.fullmatch(r"query_result\((.*)\)", query):
            texts = [grafana_text(row) for row in prometheus.query(match.group(1))]
        else:
            raise AssertionError(f"variable {name}: query {query!r} is not handled here")
        options = texts
        if var.get("regex"):
            pattern = re.compile(var["regex"].strip("/"))
            options = []
            for text in texts:
                if found := pattern.search(text):
                    options.append(found.group(1) if found.groups() else text)
        options = sorted(set(options), key=options.index)
        assert options, f"template variable ${name} ({query}) has no options"
        values[name] = var["allValue"] if var.get("includeAll") and var.get("allValue") else options[0]
    return values
