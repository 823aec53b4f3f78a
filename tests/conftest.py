"""Fixtures shared by every test suite; the helpers themselves live in the ``testkit`` package."""

import os
import sys

import pytest
from testkit.support import NO_AWS_CONFIG, Procs

# Tests never read the caller's AWS setup (AWS_PROFILE, keys, ~/.aws): not in this process (the boto3
# clients tests build, botocore's service models), not in the processes it starts. CI exports decoy
# AWS_* variables; a test that read them would sign with a key nothing accepts, or find no profile.
for name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[name]
os.environ.update(NO_AWS_CONFIG)


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
