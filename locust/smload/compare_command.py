"""``smload compare BASELINE CANDIDATE``: two runs' report.json (files, or the directories that hold
them) compared request name by request name, from the exact histograms the reports keep: every
difference with its confidence interval, and regression gates for nightly CI.

    smload compare runs/last-week runs/tonight --max-regression "p95<5%" --max-regression "error_rate<0.1pp"

Exit codes (:mod:`smload.exit_codes`): 0 no gate failed; 3 a gate failed (a regression that is
significant and at least the allowance, or too few requests to tell); 2 bad input (one line: a
file that is not a run report, two reports of different endpoints without
``--allow-different-endpoints``, a malformed gate). Neither Locust nor the network is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

from smload import exit_codes
from smload.measure.histogram import RELATIVE_ERROR, Histogram
from smload.results import compare, gates
from smload.usage import UsageError

PROG = "smload compare"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's own adds the usage)
        raise UsageError(PROG, f"{message} (see smload compare --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Compare two load test runs (their report.json, written by --report DIR) request name by "
        "request name: each difference in p50/p95/p99, mean and error rate with its confidence interval, "
        "from the exact histograms the reports keep. Gates fail the command (exit code 3) when the "
        "candidate is significantly worse by at least the allowance.",
        epilog="Exit codes: 0 no regression beyond the gates, 3 a regression (or too few requests to tell), "
        "2 bad input. Details: docs/ab-testing.md.",
    )
    parser.add_argument(
        "baseline", metavar="BASELINE", help="the reference run: report.json or its directory"
    )
    parser.add_argument(
        "candidate", metavar="CANDIDATE", help="the run to judge: report.json or its directory"
    )
    parser.add_argument(
        "--max-regression",
        metavar="EXPR",
        action="append",
        default=[],
        help='a gate (repeatable): "p95<5%%" (%% of the baseline), "p99<20ms", "mean<3%%", "error_rate<0.1pp" '
        '(percentage points), "ttft_p95<10%%" (another kind of timing), "p95[NAME]<5%%" (one request name)',
    )
    parser.add_argument(
        "--allow-different-endpoints",
        action="store_true",
        help="compare reports of different endpoints (names are matched by variant)",
    )
    parser.add_argument(
        "--confidence", default="95%", metavar="LEVEL", help="of the intervals, e.g. 95%% (default) or 0.99"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the rows and gates as JSON instead of tables"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(_parser().parse_args(argv))
    except UsageError as err:
        sys.stderr.write(f"{PROG}: error: {err.message if err.option == PROG else err}\n")
        return exit_codes.USAGE


def _run(args: argparse.Namespace) -> int:
    confidence = _confidence(args.confidence)
    wanted_gates = [gates.parse(text) for text in args.max_regression]
    baseline, candidate = load(args.baseline, "BASELINE"), load(args.candidate, "CANDIDATE")
    different = baseline["endpoint"] != candidate["endpoint"]
    if different and not args.allow_different_endpoints:
        raise UsageError(
            "--allow-different-endpoints",
            f"the baseline is a run of endpoint {baseline['endpoint']!r}, the candidate of "
            f"{candidate['endpoint']!r}: pass --allow-different-endpoints to compare them anyway",
        )
    matched = match(samples(baseline, args.baseline), samples(candidate, args.candidate), by_target=different)
    if not matched:
        raise UsageError("CANDIDATE", f"{args.candidate}: no request name in common with the baseline")
    wanted = tuple(
        dict.fromkeys(
            [*compare.STATISTICS, *(g.statistic for g in wanted_gates if g.statistic != "error_rate")]
        )
    )
    rows = []
    for base, cand in matched:
        rows += compare.compare(
            base, cand, confidence, wanted, gates.effect_of(wanted_gates), ("the baseline", "the candidate")
        )
    results = gates.evaluate(wanted_gates, rows)
    code = exit_codes.CHECK_FAILED if any(r.regressed for r in results) else exit_codes.OK
    if args.json:
        document = {
            "baseline": _about(baseline, args.baseline),
            "candidate": _about(candidate, args.candidate),
            "comparison": [row.as_dict() for row in rows],
            "gates": [r.as_dict() for r in results],
            "exit_code": code,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(_text(baseline, candidate, args, rows, results, code)) + "\n")
    return code


def _confidence(text: str) -> float:
    value = str(text).strip()
    try:
        level = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        level = math.nan
    if not 0.5 <= level < 1:
        raise UsageError(
            "--confidence", f"{text!r} is not a confidence level between 50% and 99.99%, e.g. 95% or 0.99"
        )
    return level


# --- reading reports --------------------------------------------------------------------------


def load(path_text: str, what: str) -> dict:
    """A run's report.json (or the directory holding it), checked to be one smload compare can read."""
    path = Path(path_text)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise UsageError(
            what, f"{path_text!r} is neither a report.json nor a directory holding one (--report DIR)"
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(what, f"{str(path)!r} is not a JSON run report ({_first_line(err)})") from None
    if (
        not isinstance(report, dict)
        or report.get("kind") != "run"
        or not isinstance(report.get("names"), list)
    ):
        raise UsageError(what, f"{str(path)!r} is not a report.json of a load test (written by --report DIR)")
    if report.get("histogram_relative_error") != RELATIVE_ERROR or any(
        not isinstance(n, dict) or "histograms" not in n for n in report["names"]
    ):
        raise UsageError(
            what,
            f"{str(path)!r} holds no histograms this smload can read (an older version wrote it): run the test again",
        )
    return report


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def samples(report: dict, path_text: str) -> list[compare.Sample]:
    out = []
    for entry in report["names"]:
        try:
            timings = {kind: Histogram.from_wire(wire) for kind, wire in entry["histograms"].items()}
            sample = compare.Sample(
                entry["name"], int(entry["requests"]), int(entry["failures"]), timings, entry.get("target")
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(
                "BASELINE/CANDIDATE", f"{path_text}: a malformed entry in names[] ({err!r})"
            ) from None
        out.append((entry.get("type"), sample))
    return out


def match(baseline: list, candidate: list, by_target: bool) -> list[tuple[compare.Sample, compare.Sample]]:
    """Pairs of the same request (type and name; by variant when the endpoints differ)."""

    def key(item: tuple[str, compare.Sample]) -> tuple:
        api, sample = item
        return (api, sample.target if by_target and sample.target else sample.label)

    theirs = {key(item): item[1] for item in candidate}
    return [(sample, theirs[key((api, sample))]) for api, sample in baseline if key((api, sample)) in theirs]


# --- output -----------------------------------------------------------------------------------


def _about(report: dict, path: str) -> dict:
    totals = report.get("totals") or {}
    return {
        "path": path,
        "endpoint": report.get("endpoint"),
        "started_at": report.get("started_at"),
        "requests": totals.get("requests"),
    }


def _text(baseline: dict, candidate: dict, args: Any, rows: list, results: list, code: int) -> list[str]:
    out = []
    for word, report, path in (
        ("baseline", baseline, args.baseline),
        ("candidate", candidate, args.candidate),
    ):
        about = _about(report, path)
        requests = f"{about['requests']:,} requests" if isinstance(about["requests"], int) else ""
        details = ", ".join(str(v) for v in (about["endpoint"], about["started_at"], requests) if v)
        out.append(f"{word + ':':<11}{path} ({details})")

    def title(row: compare.Row) -> str:
        return row.baseline if row.baseline == row.candidate else f"{row.baseline} -> {row.candidate}"

    out += compare.table(rows, title)
    by_name: dict[str, list] = {}
    for row in rows:
        by_name.setdefault(title(row), []).append(row)
    out += [f"  {name}: {compare.headline(group)}" for name, group in by_name.items()]
    if results:
        out.append("regression gates:")
        width = max(len(r.gate.describe()) for r in results)
        for r in results:
            row = r.row
            change = row.amount(row.difference, True)
            if row.relative is not None and not row.is_rate:
                change += f" ({row.relative:+.1%})"
            verdict = "REGRESSION" if r.regressed else "ok"
            note = f" ({r.note})" if r.note != "ok" else ""
            out.append(
                f"  {r.gate.describe():<{width}}  {title(row)}: {change}, {row.confidence:.0%} CI {row.interval()}  "
                f"{verdict}{note}"
            )
    out.append(
        f"exit code {code}" + (" (a regression beyond a gate)" if code == exit_codes.CHECK_FAILED else "")
    )
    return out
