"""Shared test helpers: real processes on 127.0.0.1, free ports, polling instead of sleeping.

Every process a test starts is stopped by its own pid (and its own process group, which holds
only the children it forked, e.g. Locust's ``--processes`` workers) when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin: smload, locust, aws live next to python
LOCUSTFILE = REPO / "locust" / "locustfile.py"
AB_TEST_CONFIG = REPO / "emulator" / "examples" / "ab-test.yaml"

# Credentials that sign fine against the emulator; the host's own AWS config is hidden from tests.
TEST_ACCESS_KEY = "AKIDSMLOADTEST000001"
TEST_SECRET_KEY = "smload/test/secret/key/0000000000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; return it. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def aws_env(**overrides: str) -> dict[str, str]:
    """The environment for a process under test: static test credentials, no host AWS config,
    no instance metadata lookups, no inherited ``LOCUST_*``/``SAGEMAKER_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_"))}
    env.update(
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent/smload-test-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/smload-test-credentials",
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def http_post(url: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def answers(url: str) -> bool:
    try:
        return http_get(url, timeout=1.0)[0] == 200
    except OSError:
        return False


@dataclass
class Proc:
    """A process started by a test, its output in a log file (printed when a test fails)."""

    popen: subprocess.Popen
    log_path: Path
    name: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM our pid, then SIGKILL what is left of its process group (only our children)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group was created for this process alone
        except (ProcessLookupError, PermissionError):
            pass
        if self.alive():
            self.popen.kill()
        return self.popen.wait(timeout=timeout)


@dataclass
class Procs:
    """Starts processes for one test and stops every one of them at its end."""

    log_dir: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.started)}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
        popen = subprocess.Popen(
            [str(c) for c in cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env if env is not None else aws_env(),
            cwd=cwd,
            start_new_session=True,  # its own process group: stop() can reap forked children
        )
        proc = Proc(popen, log_path, name)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def dump_logs(self) -> str:
        return "\n".join(f"----- {p.name} (pid {p.pid}) -----\n{p.log()[-6000:]}" for p in self.started)


@dataclass
class Emulator:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        status, body = http_get(f"{self.url}/_emulator/stats")
        assert status == 200, body
        return json.loads(body)

    def reset(self) -> None:
        status, body = http_post(f"{self.url}/_emulator/reset")
        assert status == 200, body

    def metrics(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, body
        return body.decode()


def start_emulator(procs: Procs, *args: str, port: int | None = None, timeout: float = 20.0) -> Emulator:
    """``smload emulator ARGS`` on a free port; returns once ``GET /ping`` answers 200."""
    port = port or free_port()
    proc = procs.start("emulator", [BIN / "smload", "emulator", "--host", "127.0.0.1", "--port", str(port), *args])
    emulator = Emulator(proc, port)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"emulator exited with {proc.popen.returncode}:\n{proc.log()}")
        return answers(f"{emulator.url}/ping")

    wait_until(ready, timeout, "the emulator to answer /ping")
    return emulator


def locust_cmd(*args: str, locustfile: Path = LOCUSTFILE) -> list[str]:
    return [str(BIN / "locust"), "-f", str(locustfile), *args]


def run_locust(*args: str, env: dict[str, str] | None = None, timeout: float = 180.0,
               locustfile: Path = LOCUSTFILE, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run Locust to completion (headless runs stop by themselves: always pass ``--run-time``)."""
    return subprocess.run(
        locust_cmd(*args, locustfile=locustfile),
        env=env if env is not None else aws_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def runtime_client(endpoint_url: str, **kwargs: Any):
    """A boto3 ``sagemaker-runtime`` client for the emulator: test credentials, no retries (a retry
    would hide the very errors a test counts), short timeouts. ``kwargs`` go to ``boto3.client``."""
    import boto3
    from botocore.config import Config

    env = aws_env()
    options: dict[str, Any] = {
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "config": Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    }
    options.update(kwargs)
    return boto3.client("sagemaker-runtime", endpoint_url=endpoint_url, **options)


def distributed_args(workers: int = 2) -> list[str]:
    """Locust options for a master and ``workers`` forked worker processes on a free port. Both
    ``--master-bind-port`` and ``--master-port``: the forked workers connect to ``--master-port``,
    and the default 5557 would reach another test's master."""
    port = str(free_port())
    return ["--processes", str(workers), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--master-host", "127.0.0.1", "--master-port", port]


@dataclass
class LocustResults:
    """Locust's final stats as written by ``--csv PREFIX``: requests and failures per (type, name)."""

    requests: dict[tuple[str, str], int]
    failures: dict[tuple[str, str], dict[str, int]]
    rows: dict[tuple[str, str], dict[str, str]]

    def requests_named(self, prefix: str) -> dict[str, int]:
        """Requests per name (any request type) for names starting with ``prefix``."""
        return {name: n for (_, name), n in self.requests.items() if name.startswith(prefix)}


def read_locust_csv(prefix: Path | str) -> LocustResults:
    import csv

    requests, rows, failures = {}, {}, {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                continue
            key = (row["Type"], row["Name"])
            requests[key] = int(row["Request Count"])
            rows[key] = row
    with open(f"{prefix}_failures.csv", newline="") as f:
        for row in csv.DictReader(f):
            failures.setdefault((row["Method"], row["Name"]), {})[row["Error"]] = int(row["Occurrences"])
    return LocustResults(requests, failures, rows)


ARTIFACTS = REPO / "test-artifacts"  # screenshots and reports kept from test runs (git-ignored)
_RENDER_JS = REPO / "tests" / "browser" / "render.js"
_NODE_MODULES = REPO / ".tools" / "node" / "node_modules"


def render_in_chromium(html: Path, screenshot: Path | None = None, timeout: float = 120.0) -> dict:
    """Open a local HTML file in headless Chromium (the system's, driven by playwright-core from
    ``make tools``). Returns ``console`` messages, ``pageErrors``, ``requests`` that left the file,
    and ``charts``: per <canvas>, its Chart.js type, labels and datasets, and how many pixels it inked."""
    import shutil

    chromium = shutil.which("chromium")
    node = shutil.which("node")
    if not chromium or not node or not (_NODE_MODULES / "playwright-core").is_dir():
        raise RuntimeError("chromium, node and playwright-core are needed: run `make tools`")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [node, str(_RENDER_JS), Path(html).resolve().as_uri(), str(screenshot or "")],
        env={**os.environ, "NODE_PATH": str(_NODE_MODULES), "CHROMIUM": chromium},
        capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rendering {html} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout)
