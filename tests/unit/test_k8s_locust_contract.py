"""What ``smload k8s`` knows about Locust without importing it (importing Locust monkey-patches the
process for gevent: not in ``smload k8s``, and not in this test process either, hence a subprocess)."""

import json
import subprocess
import sys

import smload.k8s
from smload.k8s.master import RUNNING_STATES


def locust_constants() -> dict:
    code = (
        "import json, locust.runners as r; print(json.dumps({'interval': r.WORKER_REPORT_INTERVAL, "
        "'running': [r.STATE_SPAWNING, r.STATE_RUNNING]}))"
    )
    return json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )


def test_what_smload_k8s_assumes_about_locust():
    constants = locust_constants()
    # `run` waits longer than one worker report interval for the last reports after a stop.
    assert smload.k8s.WORKER_REPORT_INTERVAL == constants["interval"]
    assert set(RUNNING_STATES) == set(constants["running"])
