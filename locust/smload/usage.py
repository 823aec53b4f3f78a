"""Bad input gets one line naming the option and what to do, exit code 2, and no traceback,
before any load is sent. Options are checked where they are declared (:mod:`smload.flags`); this
module is the error and the way out. Import-light: no Locust import here.
"""

import sys
from typing import NoReturn

from .exit_codes import USAGE as EXIT_USAGE


class UsageError(Exception):
    """An invalid option or file. ``option`` is the flag as the user typed it (``--payload``)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class MissingOption(UsageError):
    """A required option that was not given (which, unlike a wrong value, a web UI form can still supply)."""


def exit_usage(error: UsageError, prog: str = "smload") -> NoReturn:
    sys.stderr.write(f"{prog}: error: {error}\n")
    sys.stderr.flush()
    _stop_own_children()
    sys.exit(EXIT_USAGE)


def _stop_own_children() -> None:
    """``locust --processes N`` forks its workers before ``init``, where the checks run; its exit path
    then reaps only workers that already exited (it takes a WNOHANG poll for an exit), so they would
    outlive the master until their heartbeat timeout, holding its output pipes. Stop this process's
    own children, and leave them for Locust to reap (reaping them here would make its waitpid fail)."""
    import time

    import psutil

    children = psutil.Process().children()
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    deadline = time.monotonic() + 5
    for child in children:
        try:
            while child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
                time.sleep(0.02)
            if child.status() != psutil.STATUS_ZOMBIE:
                child.kill()
        except psutil.Error:
            pass
