"""The options of a test's verdict, declared once (:mod:`smload.flags`): pass/fail checks and the
run report. Both are web UI form fields too: a check typed there is evaluated when that test ends."""

from __future__ import annotations

from dataclasses import dataclass

from smload import flags
from smload.results import checks


@dataclass(frozen=True)
class Verdict:
    checks: tuple[checks.Check, ...]
    report: str | None  # --report DIR


OPTIONS = (
    flags.Option("--check", "a pass/fail criterion evaluated when the test ends, e.g. \"p95<300ms\", "
                 "\"p99[ab-test/variant-a]<0.5s\", \"error_rate<1%\", \"rps>=100\" (repeatable; several in one value "
                 "separated by ';'). Any failing check: exit code 3", metavar="EXPR", repeat=True),
    flags.Option("--report", "write report.html (self-contained) and report.json into DIR when the test ends",
                 flags.writable_directory, metavar="DIR"),
)

GROUP = flags.register(flags.Group(
    "verdict", "Checks and reports",
    "Pass/fail criteria and reports (sagemaker-loadtest). Each option is also a LOCUST_* variable.", OPTIONS,
    lambda values: Verdict(tuple(checks.parse_all(values["check"])), values["report"]), rank=30))
