"""The exporter's unit tests import Locust, and importing Locust monkey-patches the whole process
for gevent. So that the shared test session stays unpatched for everyone else, they run in a pytest
of their own: ``tests/unit/exporter/check_*.py``, collected and run here in a child process."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "exporter"


def test_exporter_unit_checks_in_their_own_process():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "python_files=check_*.py",
         "-o", "addopts=", "--rootdir", str(HERE), str(HERE)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
