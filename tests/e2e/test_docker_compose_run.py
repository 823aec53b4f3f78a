"""The compose stack's emulator, master and workers, started by ``docker compose up`` itself.

Our engine has no bridge network (and a test must not create one), so a small override file puts
these services on the host network with free ports: it changes addresses and ports only.
Everything else comes from the compose files as a user gets them: the image, the user, the
read-only root, the healthchecks and start order, the LOCUST_* and AWS_* environment, the mounts
(payloads, ~/.aws), ``--scale worker=N`` and rebalancing. Prometheus and Grafana cannot be pulled
here: they are left out (profile) and their configuration is checked in test_docker_compose.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml
from testkit.docker_support import compose_plugin_config, private_aws_dir
from testkit.support import REPO, answers, free_port, http_get, http_post, wait_until

COMPOSE = REPO / "docker" / "compose.yaml"
COMPOSE_AWS = REPO / "docker" / "compose.aws.yaml"


def healthcheck(url: str) -> dict:
    return {
        "test": ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"]
    }


class Project:
    """One compose project of this test (the CLI plugin, our engine), on the host network."""

    def __init__(self, docker, tmp_path: Path, files: list[Path], env: dict[str, str], endpoint_url: bool):
        self.docker = docker
        self.endpoint_url = endpoint_url  # point LOCUST_ENDPOINT_URL at the emulator
        self.emulator_port, self.master_port, self.web_port, self.metrics_port = (
            free_port() for _ in range(4)
        )
        self.web = f"http://127.0.0.1:{self.web_port}"
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        override = tmp_path / "host-network.yaml"
        override.write_text(yaml.safe_dump(self.host_network()).replace("ports: []", "ports: !reset []"))
        self.files = [*files, override]
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_", "SMLOAD_"))
        }
        self.env.update(
            docker.env(DOCKER_CONFIG=str(compose_plugin_config(tmp_path / "docker-config"))), **env
        )
        self.name = f"smload-e2e-{os.getpid()}"

    def host_network(self) -> dict:
        emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        load = {
            "network_mode": "host",
            "environment": {"LOCUST_ENDPOINT_URL": emulator_url} if self.endpoint_url else {},
        }
        return {
            "services": {
                "emulator": {
                    "network_mode": "host",
                    "ports": [],
                    "command": [
                        "emulator",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.emulator_port),
                        "--config",
                        "/opt/smload/emulator/ab-test.yaml",
                    ],
                    "healthcheck": healthcheck(f"{emulator_url}/ping"),
                },
                "master": {
                    **load,
                    "ports": [],
                    "command": [
                        "--master",
                        "--enable-rebalancing",
                        "--master-bind-host=127.0.0.1",
                        f"--master-bind-port={self.master_port}",
                        "--web-host=127.0.0.1",
                        f"--web-port={self.web_port}",
                        "--metrics-host=127.0.0.1",
                        f"--metrics-port={self.metrics_port}",
                    ],
                    "healthcheck": healthcheck(f"http://127.0.0.1:{self.web_port}/"),
                },
                "worker": {
                    **load,
                    "command": [
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(self.master_port),
                    ],
                },
                "prometheus": {"profiles": ["not-here"]},
                "grafana": {"profiles": ["not-here"]},
            }
        }

    def __call__(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        files = [arg for f in self.files for arg in ("-f", str(f))]
        result = subprocess.run(
            ["docker", "compose", "-p", self.name, *files, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert not check or result.returncode == 0, (
            f"docker compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def web_stats(self) -> dict:
        return get_json(f"{self.web}/stats/requests")

    def users_per_worker(self) -> list[int]:
        return sorted(w["user_count"] for w in self.web_stats()["workers"])

    def locust_counts(self) -> dict[str, int]:
        return {s["name"]: s["num_requests"] for s in self.web_stats()["stats"] if s["name"] != "Aggregated"}


@pytest.fixture
def project(request, docker, image, tmp_path):
    """``project(files, env)``: a compose project for this test; down (with its volumes) at its end."""
    made = []

    def make(files: list[Path], env: dict[str, str], endpoint_url: bool = True) -> Project:
        made.append(Project(docker, tmp_path, files, {"SMLOAD_IMAGE": image, **env}, endpoint_url))
        return made[-1]

    yield make
    for p in made:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            sys.stderr.write(p("logs", check=False).stdout[-20000:])
        p("down", "--volumes", "--timeout", "20", check=False)


def get_json(url: str) -> dict:
    status, body = http_get(url)
    assert status == 200, body
    return json.loads(body)


def test_compose_up_runs_a_test_that_stops_by_itself_and_scales(project, docker, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o777)
    stack = project(
        [COMPOSE],
        {
            "SMLOAD_REPORTS": str(reports),
            "LOCUST_USERS": "6",
            "LOCUST_SPAWN_RATE": "6",
            "LOCUST_RUN_TIME": "30s",
            "LOCUST_EXPECT_WORKERS": "2",
        },
    )  # as make run-local WORKERS=2 sets it
    stack("up", "--detach", "--wait", "--scale", "worker=2", "emulator", "master", "worker")

    # autostarted (LOCUST_AUTOSTART in the compose file) with LOCUST_USERS over the 2 workers
    wait_until(lambda: stack.users_per_worker() == [3, 3], 90, "6 users on 2 workers", interval=0.5)
    stack("up", "--detach", "--scale", "worker=3", "--no-recreate", "worker")
    wait_until(
        lambda: stack.users_per_worker() == [2, 2, 2],
        60,
        "the scaled-up worker to get its share",
        interval=0.5,
    )

    # LOCUST_RUN_TIME: the test stops by itself; in-flight requests finish (LOCUST_STOP_TIMEOUT)
    wait_until(lambda: stack.web_stats()["state"] == "stopped", 120, "the test to stop", interval=0.5)
    server = get_json(f"{stack.emulator}/_emulator/stats")["endpoints"]["ab-test"]["variants"]
    assert stack.locust_counts() == {f"ab-test/{name}": v["requests"] for name, v in server.items()}
    assert sum(stack.locust_counts().values()) > 100

    ids = stack("ps", "--quiet").stdout.split()
    assert len(ids) == 5  # emulator, master, 3 workers
    for cid in ids:
        container = docker.inspect(cid)
        assert (
            container["HostConfig"]["ReadonlyRootfs"] is True and "/tmp" in container["HostConfig"]["Tmpfs"]
        )
        assert container["Config"]["User"] == "10001:10001"


def test_real_endpoint_stack_signs_with_the_mounted_profile(project, containers, tmp_path):
    """docker/compose.aws.yaml as `SAGEMAKER_ENDPOINT_NAME=... AWS_PROFILE=... make run-local` uses it,
    with the emulator standing in for AWS (AWS itself is out of reach): strict SigV4 accepts only
    the key of the profile in the mounted ~/.aws (files private to the host user 4242, whose UID
    the containers run as). No test starts by itself; one started from the web UI is counted exactly."""
    key_id, secret = "AKIDPROFILEKEY000042", "profile-secret-only-in-the-credentials-file"
    aws = private_aws_dir(tmp_path, owner=4242)
    (aws / "credentials").write_text(
        f"[load]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    )
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    (bodies / "one.json").write_text('{"inputs": [1, 2, 3]}')
    bodies.chmod(0o755)

    stack = project(
        [COMPOSE, COMPOSE_AWS],
        {
            "SAGEMAKER_ENDPOINT_NAME": "ab-test",
            "AWS_PROFILE": "load",
            "AWS_REGION": "us-east-1",
            "SMLOAD_AWS_DIR": str(aws),
            "SMLOAD_PAYLOAD_DIR": str(bodies),
            "SMLOAD_UID": "4242",
            "SMLOAD_GID": "4242",
        },
        endpoint_url=False,
    )
    # The stand-in for AWS, reached as botocore would reach another endpoint: LOCUST_ENDPOINT_URL stays
    # empty (compose.aws.yaml) and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME passes through from the host.
    stack.env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = stack.emulator

    containers.start(
        "emulator",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        stack.emulator_port,
        "--config",
        "/opt/smload/emulator/ab-test.yaml",
        "--strict-sigv4",
        "--access-key",
        f"{key_id}:{secret}",
    )
    wait_until(lambda: answers(f"{stack.emulator}/ping"), 60, "the emulator container")
    stack("up", "--detach", "--wait", "--scale", "worker=2", "master", "worker")
    wait_until(lambda: len(stack.web_stats()["workers"]) == 2, 60, "2 workers")
    assert stack.web_stats()["state"] == "ready"  # nothing started by itself

    form = urllib.parse.urlencode({"user_count": 4, "spawn_rate": 4}).encode()
    status, body = http_post(
        f"{stack.web}/swarm", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200, body
    wait_until(lambda: get_json(f"{stack.emulator}/_emulator/stats")["requests"] >= 200, 90, "200 requests")
    assert http_post(f"{stack.web}/stop")[0] == 200
    wait_until(lambda: stack.web_stats()["state"] == "stopped", 60, "the test to stop", interval=0.5)

    server = get_json(f"{stack.emulator}/_emulator/stats")["endpoints"]["ab-test"]["variants"]
    assert all("AccessDenied" not in v["errors"] for v in server.values()), (
        server
    )  # signed with the profile's key
    assert stack.locust_counts() == {f"ab-test/{name}": v["requests"] for name, v in server.items()}
    for cid in stack("ps", "--quiet").stdout.split():
        assert containers.docker.inspect(cid)["Config"]["User"] == "4242:4242"
