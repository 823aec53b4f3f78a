"""The options of a test's verdict, declared once (:mod:`smload.flags`): pass/fail checks, the run
report and the A/B comparison of production variants. All are web UI form fields too: a check typed
there is evaluated when that test ends."""

from __future__ import annotations

from dataclasses import dataclass

from smload import flags
from smload.invoke.options import NAME
from smload.results import checks, split


@dataclass(frozen=True)
class Verdict:
    checks: tuple[checks.Check, ...]
    report: str | None  # --report DIR
    drain_timeout: float | None  # None: the endpoint's request timeout (smload.measure.drain)
    baseline_variant: str | None = None  # compare the other variants against this one
    expected_split: dict[str, float] | None = None  # variant -> share (sums to 1)


OPTIONS = (
    flags.Option(
        "--check",
        'a pass/fail criterion evaluated when the test ends, e.g. "p95<300ms", '
        '"p99[ab-test/variant-a]<0.5s", "error_rate<1%", "rps>=100" (repeatable; several in one value '
        "separated by ';'); a difference of two names, \"p95[ab-test/variant-b]-p95[ab-test/variant-a]<10ms\", fails "
        "only when it is significant (docs/ab-testing.md). Any failing check: exit code 3",
        metavar="EXPR",
        repeat=True,
    ),
    flags.Option(
        "--report",
        "write report.html (self-contained) and report.json into DIR when the test ends",
        flags.writable_directory,
        metavar="DIR",
    ),
    flags.Option(
        "--drain-timeout",
        "when a test ends (any way it ends), seconds to wait for the requests in flight "
        "before counting them as abandoned; default: --connect-timeout + --request-timeout, the longest "
        "a live endpoint's answer can take; 0 cuts them off at once",
        flags.number(0, unit="seconds"),
        metavar="SECONDS",
        web_ui=False,
    ),
    flags.Option(
        "--baseline-variant",
        "A/B comparison: compare every other production variant against this one "
        "(default: every pair of variants, the first name as the baseline)",
        flags.matching(NAME, "variant name (letters, digits and hyphens)", 63),
        metavar="VARIANT",
    ),
    flags.Option(
        "--expected-split",
        "A/B traffic split to test the observed one against, e.g. "
        '"variant-a=0.7,variant-b=0.3" (default: the endpoint\'s weights, from DescribeEndpoint or the '
        "emulator's configuration)",
        split.parse_expected,
        metavar="VARIANT=WEIGHT,...",
    ),
)

WEB = flags.register(
    flags.Group(
        "web",
        "Web UI",
        "What a start from Locust's web UI may change (sagemaker-loadtest).",
        (
            flags.Option(
                "--web-any-endpoint",
                "let the web UI's form send requests to any --endpoint-url; by default it "
                "keeps the one given at start-up (the form has no login: whoever reaches it could otherwise have "
                "the workers send signed requests, and --payload files, to a host of their choosing)",
                switch=True,
                web_ui=False,
            ),
        ),
        rank=35,
    )
)

GROUP = flags.register(
    flags.Group(
        "verdict",
        "Checks and reports",
        "Pass/fail criteria and reports (sagemaker-loadtest). Each option is also a LOCUST_* variable.",
        OPTIONS,
        lambda values: Verdict(
            tuple(checks.parse_all(values["check"])),
            values["report"],
            values["drain_timeout"],
            values["baseline_variant"],
            values["expected_split"],
        ),
        rank=30,
    )
)
