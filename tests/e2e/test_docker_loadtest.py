"""Load tests in containers: the emulator, a master and workers, each its own container of the one
image (host network, 127.0.0.1, free ports; read-only root, tmpfs /tmp, UID 10001). Nothing lost:
Locust's totals, the exporter's and the emulator's agree exactly."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from dataclasses import dataclass

from testkit.docker_support import TEST_AWS_ENV, Container, Containers
from testkit.support import answers, free_port, http_get, locust_results, wait_until

from smload.errors import base_type

AB_TEST = "/opt/smload/emulator/ab-test.yaml"
PAYLOAD = "/opt/smload/payloads/small.json"


@dataclass
class Stack:
    emulator: Container
    emulator_port: int
    master: Container
    master_port: int
    web_port: int
    metrics_port: int

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def emulator_stats(self) -> dict:
        status, body = http_get(f"{self.emulator_url}/_emulator/stats")
        assert status == 200, body
        return json.loads(body)

    def web_stats(self) -> dict:
        status, body = http_get(f"http://127.0.0.1:{self.web_port}/stats/requests")
        assert status == 200, body
        return json.loads(body)

    def metrics(self) -> str:
        status, body = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200, body
        return body.decode()


def start_emulator(containers: Containers) -> tuple[Container, int]:
    port = free_port()
    emulator = containers.start(
        "emulator", "emulator", "--host", "127.0.0.1", "--port", port, "--config", AB_TEST
    )

    def ready() -> bool:
        assert emulator.running(), f"the emulator container exited:\n{emulator.logs()}"
        return answers(f"http://127.0.0.1:{port}/ping")

    wait_until(ready, 60, "the emulator container to answer /ping", interval=0.2)
    return emulator, port


def start_stack(
    containers: Containers,
    *master_args: str,
    env: dict[str, str] | None = None,
    volumes: tuple[str, ...] = (),
) -> Stack:
    emulator, emulator_port = start_emulator(containers)
    master_port, web_port, metrics_port = free_port(), free_port(), free_port()
    master = containers.start(
        "master",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        master_port,
        "--web-host",
        "127.0.0.1",
        "--web-port",
        web_port,
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        metrics_port,
        "--endpoint-name",
        "ab-test",
        "--endpoint-url",
        f"http://127.0.0.1:{emulator_port}",
        "--region",
        "us-east-1",
        "--payload",
        PAYLOAD,
        "--stop-timeout",
        "10",
        *master_args,
        env=env or TEST_AWS_ENV,
        volumes=volumes,
    )
    return Stack(emulator, emulator_port, master, master_port, web_port, metrics_port)


def start_worker(
    containers: Containers, stack: Stack, *args: str, env: dict[str, str] | None = None
) -> Container:
    return containers.start(
        "worker",
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        stack.master_port,
        *args,
        env=env or TEST_AWS_ENV,
    )


def metric_samples(text: str, name: str) -> dict[str, float]:
    """``name{labels} value`` lines of a Prometheus exposition: label string -> value."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", re.MULTILINE)
    return {labels or "": float(value) for labels, value in pattern.findall(text)}


def by_name(samples: dict[str, float]) -> dict[str, float]:
    """Samples keyed by their ``name`` label (summed over the other labels)."""
    out: dict[str, float] = {}
    for labels, value in samples.items():
        name = re.search(r'(?:^|[{,])name="([^"]*)"', labels)
        if name:
            out[name.group(1)] = out.get(name.group(1), 0) + value
    return out


def test_headless_run_two_workers_counts_match_exactly(containers, docker, image):
    """A 30 s headless run: master + 2 workers. Locust's totals per variant equal the emulator's
    counts exactly; failures per type too; the master's /metrics has the latency histogram during
    the run. The AWS secret given to the containers appears in no log (one worker logs at DEBUG)
    and nowhere in the image."""
    secret = "smload-e2e-" + secrets.token_hex(16)
    env = {**TEST_AWS_ENV, "AWS_SECRET_ACCESS_KEY": secret}
    stack = start_stack(
        containers,
        "--headless",
        "--expect-workers",
        "2",
        "-u",
        "10",
        "-r",
        "10",
        "-t",
        "30s",
        "--json",
        "--exit-code-on-error",
        "0",
        env=env,
    )
    workers = [
        start_worker(containers, stack, env=env),
        start_worker(containers, stack, "--loglevel", "DEBUG", env=env),
    ]

    def histogram_counts() -> float:
        if not answers(f"http://127.0.0.1:{stack.metrics_port}/metrics"):
            return 0
        return sum(metric_samples(stack.metrics(), "locust_request_duration_seconds_count").values())

    during = wait_until(
        histogram_counts, 60, "the master's /metrics to show the latency histogram", interval=0.5
    )
    assert "locust_request_duration_seconds_bucket{" in stack.metrics()
    for container in (stack.emulator, stack.master, *workers):
        assert container.top_users() == {"10001"}, f"{container.name} runs a process as another user"

    code = stack.master.wait(timeout=120)
    assert code == 0, stack.master.logs()
    for worker in workers:
        assert worker.wait(timeout=30) == 0, worker.logs()

    stdout, stderr = stack.master.output()
    results = locust_results(subprocess.CompletedProcess(["locust"], code, stdout, stderr))
    server = stack.emulator_stats()["endpoints"]["ab-test"]["variants"]
    ours = results.requests_named("ab-test/")
    assert ours == {f"ab-test/{name}": v["requests"] for name, v in server.items()}, (ours, server)
    assert stack.emulator_stats()["requests"] == sum(ours.values()) > during
    assert set(ours) == {"ab-test/variant-a", "ab-test/variant-b"}
    for name, variant in server.items():
        failures = results.failures.get(("InvokeEndpoint", f"ab-test/{name}"), {})
        assert {base_type(k): n for k, n in failures.items()} == variant["errors"], (name, failures, variant)

    # The run-time secret: in no container's output, nowhere in the image.
    for container in containers.started:
        assert secret not in container.logs(), f"the secret leaked into {container.name}'s logs"
    assert_not_in_image(docker, image, secret.encode())


def assert_not_in_image(docker, image: str, needle: bytes) -> None:
    """Neither the image's config (env, labels, history) nor any byte of its layers holds ``needle``."""
    assert needle.decode() not in json.dumps(docker.inspect(image))
    assert needle.decode() not in docker("history", "--no-trunc", image).stdout
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, env=docker.env()) as save:
        tail = b""
        while chunk := save.stdout.read(1 << 20):
            assert needle not in tail + chunk, "the secret is in the image's layers"
            tail = chunk[-len(needle) :]
    assert save.returncode == 0


def test_third_worker_joins_mid_test_and_gets_users(containers):
    """--enable-rebalancing: a worker container started during a test gets its share of the users.
    When the test has stopped, the web UI's stats, the exporter's counters and histogram and the
    emulator's counts agree exactly."""
    stack = start_stack(
        containers,
        "--autostart",
        "--enable-rebalancing",
        "--expect-workers",
        "2",
        "-u",
        "12",
        "-r",
        "12",
        "-t",
        "40s",
        "--autoquit",
        "120",
    )
    for _ in range(2):
        start_worker(containers, stack)

    assert wait_until(lambda: answers(f"http://127.0.0.1:{stack.web_port}/"), 60, "the web UI")
    status, page = http_get(f"http://127.0.0.1:{stack.web_port}/")
    assert status == 200 and b"Locust" in page

    def users_per_worker() -> list[int]:
        return sorted(w["user_count"] for w in stack.web_stats()["workers"])

    wait_until(lambda: users_per_worker() == [6, 6], 60, "12 users on 2 workers", interval=0.5)
    third = start_worker(containers, stack)
    wait_until(lambda: users_per_worker() == [4, 4, 4], 60, "the third worker to get its share", interval=0.5)
    assert third.running()

    wait_until(
        lambda: stack.web_stats()["state"] == "stopped", 120, "the test to stop after 40 s", interval=0.5
    )
    web = {s["name"]: s for s in stack.web_stats()["stats"] if s["name"] != "Aggregated"}
    server = stack.emulator_stats()["endpoints"]["ab-test"]["variants"]
    expected = {f"ab-test/{name}": v["requests"] for name, v in server.items()}
    assert {name: s["num_requests"] for name, s in web.items()} == expected
    failures = {f"ab-test/{name}": sum(v["errors"].values()) for name, v in server.items()}
    assert {name: s["num_failures"] for name, s in web.items()} == failures

    metrics = stack.metrics()
    assert by_name(metric_samples(metrics, "locust_requests_total")) == expected
    assert by_name(metric_samples(metrics, "locust_request_duration_seconds_count")) == expected


def test_calibrate_in_a_read_only_container(containers, tmp_path):
    """``IMAGE calibrate``: smload calibrate runs Locust (master + a forked worker) inside the one
    container with a read-only root, and writes its results into the mounted output directory."""
    emulator, emulator_port = start_emulator(containers)
    out = tmp_path / "calibration"
    out.mkdir()
    out.chmod(0o777)  # written by UID 10001
    master_port = free_port()
    calibrate = containers.start(
        "calibrate",
        "calibrate",
        "--endpoint-name",
        "ab-test",
        "--endpoint-url",
        f"http://127.0.0.1:{emulator_port}",
        "--region",
        "us-east-1",
        "--payload",
        PAYLOAD,
        "--slo",
        "p99<400ms",
        "--instances",
        "1",
        "--start-users",
        "2",
        "--max-users",
        "16",
        "--step-warmup",
        "1",
        "--step-time",
        "3",
        "--stop-timeout",
        "10",
        "--processes",
        "1",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        master_port,
        "--master-host",
        "127.0.0.1",
        "--master-port",
        master_port,
        "--metrics-port",
        free_port(),
        "--output",
        "/var/lib/smload/out",
        env=TEST_AWS_ENV,
        volumes=(f"{out}:/var/lib/smload/out",),
    )
    code = calibrate.wait(timeout=240)
    assert code in (0, 3), calibrate.logs()  # 0: a recommendation; 3: no step met the SLO (both are results)
    summary = json.loads((out / "calibration.json").read_text())
    assert summary, calibrate.logs()
    assert (out / "calibration.html").stat().st_size > 1000
    status, stats = http_get(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
    assert status == 200 and json.loads(stats)["requests"] > 100
    assert emulator.running()
