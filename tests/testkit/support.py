"""Shared test helpers: real processes on 127.0.0.1, free ports, polling instead of sleeping.

Every process a test starts is stopped by its own pid (and its own process group, which holds
only the children it forked, e.g. Locust's ``--processes`` workers) when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: smload, locust, aws live next to python
LOCUSTFILE = REPO / "locust" / "locustfile.py"
AB_TEST_CONFIG = REPO / "emulator" / "examples" / "ab-test.yaml"

# Credentials that sign fine against the emulator; the host's own AWS config is hidden from tests.
TEST_ACCESS_KEY = "AKIDSMLOADTEST000001"
TEST_SECRET_KEY = "smload/test/secret/key/0000000000000000000"


def rss(pid: int) -> int:
    """A process's resident memory in bytes (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


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


# No AWS config or credentials file and no instance metadata: what botocore finds is what a test gives.
NO_AWS_CONFIG = {
    "AWS_CONFIG_FILE": "/nonexistent/smload-test-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/smload-test-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def aws_env(**overrides: str) -> dict[str, str]:
    """The environment for a process under test: static test credentials, no host AWS config,
    no instance metadata lookups, no inherited ``LOCUST_*``/``SAGEMAKER_*`` settings, and the
    exporter of any Locust master on a free port of 127.0.0.1 (its default, 9646, would collide
    between tests running at once; a test that scrapes it passes ``--metrics-port`` itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_"))}
    env.update(
        LOCUST_METRICS_HOST="127.0.0.1",
        LOCUST_METRICS_PORT=str(free_port()),
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        **NO_AWS_CONFIG,
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


def http_post(
    url: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
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
    proc = procs.start(
        "emulator", [BIN / "smload", "emulator", "--host", "127.0.0.1", "--port", str(port), *args]
    )
    emulator = Emulator(proc, port)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"emulator exited with {proc.popen.returncode}:\n{proc.log()}")
        return answers(f"{emulator.url}/ping")

    wait_until(ready, timeout, "the emulator to answer /ping")
    return emulator


def locust_cmd(*args: str, locustfile: Path = LOCUSTFILE) -> list[str]:
    return [str(BIN / "locust"), "-f", str(locustfile), *args]


def run_locust(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180.0,
    locustfile: Path = LOCUSTFILE,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess:
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


def control_client(endpoint_url: str, **kwargs: Any):
    """A boto3 ``sagemaker`` (control plane) client for the emulator's DescribeEndpoint, as runtime_client."""
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
    return boto3.client("sagemaker", endpoint_url=endpoint_url, **options)


def distributed_args(workers: int = 2) -> list[str]:
    """Locust options for a master and ``workers`` forked worker processes on a free port. Both
    ``--master-bind-port`` and ``--master-port``: the forked workers connect to ``--master-port``,
    and the default 5557 would reach another test's master."""
    port = str(free_port())
    return [
        "--processes",
        str(workers),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--master-host",
        "127.0.0.1",
        "--master-port",
        port,
    ]


@dataclass
class LocustResults:
    """Locust's final stats, from a run with ``--json``: requests per (request_type, name) from the
    JSON Locust prints on stdout at shutdown (``--csv`` is rewritten once a second and misses the
    end; ``--json-file`` suppresses the error report), failures per (request_type, name) and error
    text from the "Error report" Locust logs (stderr) after it."""

    requests: dict[tuple[str, str], int]
    failures: dict[tuple[str, str], dict[str, int]]
    entries: dict[tuple[str, str], dict[str, Any]]

    def requests_named(self, prefix: str) -> dict[str, int]:
        """Requests per name (any request type) for names starting with ``prefix``."""
        return {name: n for (_, name), n in self.requests.items() if name.startswith(prefix)}


def locust_results(result: subprocess.CompletedProcess) -> LocustResults:
    """The final stats of a run with ``--json`` (its stdout is only that JSON)."""
    # with --processes the forked workers print their (emptied) stats too: "[]"
    decoder, text, documents, at = json.JSONDecoder(), result.stdout, [], 0
    while text[at:].strip():
        document, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        documents.append(document)
        at = end
    master = [d for d in documents if d]
    assert len(master) <= 1, f"more than one process printed stats: {text[:2000]}"
    entries = {(e["method"], e["name"]): e for e in (master[0] if master else [])}
    failures: dict[tuple[str, str], dict[str, int]] = {}
    lines = result.stderr.splitlines()
    if "Error report" in lines:
        for line in lines[lines.index("Error report") + 3 :]:
            if line.startswith("---") or not line.strip():
                break
            count, _, rest = line.strip().partition(" ")
            method, _, name_and_error = rest.strip().partition(" ")
            name, _, error = name_and_error.rpartition(": ")
            failures.setdefault((method, name), {})[error.strip()] = int(count)
    requests = {key: e["num_requests"] for key, e in entries.items()}
    return LocustResults(requests, failures, entries)


@dataclass
class Prometheus:
    """A real Prometheus server (Debian's ``prometheus``) started by a test, scraping our targets."""

    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query; the result vector (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        status, body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{expr}: {body[:500]!r}"
        return answer["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """A range query; the result matrix (``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]``)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        status, body = http_get(f"{self.url}/api/v1/query_range?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{expr}: {body[:500]!r}"
        return answer["data"]["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of a query that returns one series, None when it returns none."""
        result = self.query(expr, at)
        assert len(result) <= 1, f"{expr}: {len(result)} series, expected one"
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> bool:
        status, body = http_get(f"{self.url}/api/v1/targets")
        active = json.loads(body)["data"]["activeTargets"] if status == 200 else []
        return bool(active) and all(t["health"] == "up" for t in active)


def prometheus_config(jobs: dict[str, str], scrape_interval: str = "1s") -> str:
    """A prometheus.yml scraping each ``job: host:port`` at ``scrape_interval``."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
    ]
    for job, target in jobs.items():
        lines += [f"  - job_name: {job}", f"    static_configs: [{{targets: ['{target}']}}]"]
    return "\n".join(lines) + "\n"


def start_prometheus(procs: Procs, config: str, timeout: float = 30.0) -> Prometheus:
    """``prometheus`` on 127.0.0.1 with ``config`` (YAML text) and its data in the test's tmp dir;
    returns once it answers. A missing binary is a failure that says how to install it."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: run `make tools` (Debian: apt-get install prometheus)"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=procs.log_dir))
    (workdir / "prometheus.yml").write_text(config)
    proc = procs.start(
        "prometheus",
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
    )
    prometheus = Prometheus(proc, port)

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"prometheus exited with {proc.popen.returncode}:\n{proc.log()}")
        return answers(f"{prometheus.url}/-/ready")

    wait_until(ready, timeout, "prometheus to be ready")
    return prometheus


@dataclass
class Moto:
    """moto in server mode on 127.0.0.1: a local emulation of AWS APIs (CloudWatch, the SageMaker
    control plane, IAM), because no AWS account can be reached from here."""

    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment that points botocore's CloudWatch and SageMaker clients at this moto."""
        return {"AWS_ENDPOINT_URL_CLOUDWATCH": self.url, "AWS_ENDPOINT_URL_SAGEMAKER": self.url}

    def client(self, service: str, key: str = TEST_ACCESS_KEY, secret: str = TEST_SECRET_KEY):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def create_endpoint(self, name: str, instances: dict[str, int]) -> None:
        sagemaker = self.client("sagemaker")
        sagemaker.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": count,
                    "InstanceType": "ml.g4dn.xlarge",
                    "InitialVariantWeight": 1.0,
                }
                for variant, count in instances.items()
            ],
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")

    def put_metrics(self, endpoint: str, data: dict[str, list[tuple[str, str, str, list[float]]]]) -> None:
        """``{variant: [(namespace, metric, unit, values), ...]}``, timestamped two minutes ago."""
        import datetime

        cloudwatch = self.client("cloudwatch")
        at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
        for variant, metrics in data.items():
            dimensions = [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ]
            for namespace, metric, unit, values in metrics:
                cloudwatch.put_metric_data(
                    Namespace=namespace,
                    MetricData=[
                        {
                            "MetricName": metric,
                            "Dimensions": dimensions,
                            "Value": v,
                            "Unit": unit,
                            "Timestamp": at,
                        }
                        for v in values
                    ],
                )

    def user_allowed(self, *actions: str) -> tuple[str, str]:
        """An IAM user allowed ``actions`` only; its access key and secret."""
        iam = self.client("iam")
        name = f"user{len(iam.list_users()['Users'])}"
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_iam(self) -> None:
        """From now on moto checks every request against IAM (its INITIAL_NO_AUTH_ACTION_COUNT = 0)."""
        status, body = http_post(f"{self.url}/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"})
        assert status == 200, body


def start_moto(procs: Procs, timeout: float = 30.0) -> Moto:
    port = free_port()
    proc = procs.start("moto", [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)])
    moto = Moto(proc, port)
    wait_until(lambda: answers(f"{moto.url}/moto-api/"), timeout, "moto to answer")
    return moto


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
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rendering {html} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout)
