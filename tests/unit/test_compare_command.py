"""``smload compare``: report.json files written by the report writer itself (smload.results.reports,
from histograms of known distributions), compared and gated; bad input refused with one line and
exit code 2. The command runs in-process (``main``), and once as the installed console script."""

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from smload import compare_command
from smload.measure.histogram import Histogram
from smload.results import reports

SMLOAD = Path(sys.executable).parent / "smload"


def write_report(
    directory: Path,
    endpoint: str = "ab",
    median_ms: float = 20.0,
    n: int = 5000,
    seed: int = 1,
    failures: int = 0,
    variants=("variant-a", "variant-b"),
) -> Path:
    rng = random.Random(seed)
    names = []
    for variant in variants:
        h = Histogram()
        for _ in range(n):
            h.record(rng.lognormvariate(math.log(median_ms), 0.47))
        names.append(
            reports.NameStats(
                "InvokeEndpoint",
                f"{endpoint}/{variant}",
                n,
                failures,
                100.0,
                h,
                endpoint=endpoint,
                target=variant,
            )
        )
    total = reports.NameStats("", "all", n * len(variants), failures * len(variants), 200.0, Histogram())
    report = reports.run_report(
        names,
        total,
        [],
        [],
        {"seconds": [], "requests": [], "failures": [], "users": []},
        {},
        started_at="2025-01-01T00:00:00Z",
        endpoint=endpoint,
    )
    reports.write_run(directory, report)
    return directory


@pytest.fixture
def runs(tmp_path):
    return {
        "monday": write_report(tmp_path / "monday", seed=1),
        "tuesday": write_report(tmp_path / "tuesday", seed=2),
        "slower": write_report(tmp_path / "slower", median_ms=23.0, seed=3),  # 15% worse at every quantile
        "other": write_report(tmp_path / "other", endpoint="ab-v2", seed=4),
    }


def compare(capsys, *args) -> tuple[int, str, str]:
    code = compare_command.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_two_runs_of_one_endpoint_pass_the_gates(runs, capsys):
    code, out, err = compare(
        capsys,
        runs["monday"],
        runs["tuesday"] / "report.json",
        "--max-regression",
        "p95<5%",
        "--max-regression",
        "error_rate<0.1pp",
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("baseline:  ") and "ab, 2025-01-01T00:00:00Z, 10,000 requests" in lines[0]
    assert any(line.split()[:1] == ["p95_ms"] and " to " in line for line in lines)  # the interval is shown
    gates = [
        line for line in lines if line.startswith("  p95 < 5%") or line.startswith("  error_rate < 0.1 pp")
    ]
    assert len(gates) == 4 and all(line.rstrip().endswith("ok") or "ok (" in line for line in gates)
    assert lines[-1] == "exit code 0"


def test_a_candidate_15_percent_slower_fails_the_p95_gate(runs, capsys):
    code, out, _err = compare(capsys, runs["monday"], runs["slower"], "--max-regression", "p95<5%")
    assert code == 3
    regressions = [line for line in out.splitlines() if "REGRESSION" in line]
    assert len(regressions) == 2 and all("95% CI +" in line for line in regressions)
    assert "the candidate is slower than the baseline at p50, p95, p99 and the mean" in out
    assert out.splitlines()[-1] == "exit code 3 (a regression beyond a gate)"
    # without a gate it is a report, not a verdict
    assert compare(capsys, runs["monday"], runs["slower"])[0] == 0
    # an allowance above the regression passes
    assert compare(capsys, runs["monday"], runs["slower"], "--max-regression", "p95<30%")[0] == 0


def test_json_output_holds_the_rows_and_gates(runs, capsys):
    code, out, _err = compare(
        capsys,
        runs["monday"],
        runs["slower"],
        "--json",
        "--max-regression",
        "p99<10ms",
        "--confidence",
        "0.99",
    )
    document = json.loads(out)
    assert document["exit_code"] == code
    rows = document["comparison"]
    assert {r["metric"] for r in rows} == {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "error_rate"}
    assert all(r["confidence"] == 0.99 for r in rows)
    p95 = next(r for r in rows if r["metric"] == "p95_ms" and r["baseline"] == "ab/variant-a")
    assert p95["significant"] and 0.10 < p95["relative_difference"] < 0.20
    assert {g["gate"] for g in document["gates"]} == {"p99<10ms"}
    assert document["baseline"]["endpoint"] == "ab"


def test_reports_of_different_endpoints_need_the_flag(runs, capsys):
    code, out, err = compare(capsys, runs["monday"], runs["other"])
    assert (code, out) == (2, "")
    assert err == (
        "smload compare: error: --allow-different-endpoints: the baseline is a run of endpoint 'ab', "
        "the candidate of 'ab-v2': pass --allow-different-endpoints to compare them anyway\n"
    )
    code, out, err = compare(
        capsys, runs["monday"], runs["other"], "--allow-different-endpoints", "--max-regression", "p95<5%"
    )
    assert code == 0 and "ab/variant-a -> ab-v2/variant-a" in out  # matched by variant


@pytest.mark.parametrize(
    "make, args, message",
    [
        (
            None,
            ["missing", "monday"],
            "BASELINE: 'missing' is neither a report.json nor a directory holding one",
        ),
        ("not-json", ["bad", "monday"], "BASELINE: "),
        ("calibration", ["bad", "monday"], "is not a report.json of a load test"),
        ("old", ["monday", "bad"], "CANDIDATE: "),
        (
            None,
            ["monday", "tuesday", "--max-regression", "p95<5"],
            "--max-regression: 'p95<5': p95 needs a unit",
        ),
        (None, ["monday", "tuesday", "--max-regression", "ttft_p95<5%"], "neither report has ttft_p95_ms"),
        (
            None,
            ["monday", "tuesday", "--confidence", "120%"],
            "--confidence: '120%' is not a confidence level",
        ),
        (None, ["monday"], "the following arguments are required: CANDIDATE"),
        (None, ["monday", "tuesday", "--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, make, args, message):
    bad = tmp_path / "bad"
    bad.mkdir()
    if make == "not-json":
        (bad / "report.json").write_text("<html>not a report</html>")
    elif make == "calibration":
        (bad / "report.json").write_text(json.dumps({"kind": "calibration", "steps": []}))
    elif make == "old":
        report = json.loads((runs["tuesday"] / "report.json").read_text())
        for name in report["names"]:
            del name["histograms"]
        (bad / "report.json").write_text(json.dumps(report))
    paths = {"monday": runs["monday"], "tuesday": runs["tuesday"], "bad": bad, "missing": "missing"}
    code, out, err = compare(capsys, *[paths.get(a, a) for a in args])
    assert (code, out) == (2, "")
    assert err.startswith("smload compare: error: ") and message in err
    assert err.count("\n") == 1, err


def test_the_console_script(runs, tmp_path):
    """The installed ``smload compare``: cli dispatch, exit code 3 and a one-line error with 2."""
    done = subprocess.run(
        [SMLOAD, "compare", runs["monday"], runs["slower"], "--max-regression", "p95<5%"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3 and "REGRESSION" in done.stdout, done.stderr
    (tmp_path / "x.json").write_text("[]")
    done = subprocess.run(
        [SMLOAD, "compare", tmp_path / "x.json", runs["monday"]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "is not a report.json of a load test" in done.stderr
