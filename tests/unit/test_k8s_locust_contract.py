"""What ``smload k8s`` knows about Locust without importing it (it must not: gevent monkey-patching)."""

import locust.runners

import smload.k8s
from smload.k8s.master import RUNNING_STATES


def test_worker_report_interval_is_locusts():
    """`run` waits longer than one worker report interval for the last reports after a stop."""
    assert smload.k8s.WORKER_REPORT_INTERVAL == locust.runners.WORKER_REPORT_INTERVAL


def test_running_states_are_locusts():
    assert set(RUNNING_STATES) == {locust.runners.STATE_SPAWNING, locust.runners.STATE_RUNNING}
