"""Fixtures shared by every test suite; the helpers themselves live in the ``testkit`` package."""

import sys

import pytest
from testkit.support import Procs


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def procs(request, tmp_path):
    """Start real processes for this test; all are stopped at its end, their logs shown on failure."""
    group = Procs(tmp_path)
    yield group
    group.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(group.dump_logs())
