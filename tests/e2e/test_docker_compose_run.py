"""The compose stack's emulator, master and workers, started by ``docker compose up`` itself.

Our engine has no bridge network (and a test must not create one), so a small override file puts
these three services on the host network with free ports: it changes addresses and ports only.
Everything else comes from docker/compose.yaml as a user gets it: the image, the non-root user,
the read-only root, the healthchecks and start order, the LOCUST_* environment (endpoint, payload
mount, autostart, users, run time), ``--scale worker=N`` and rebalancing. Prometheus and Grafana
cannot be pulled here: they are left out (profile) and their configuration is checked in
test_docker_compose.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from docker_support import compose_plugin_config
from support import REPO, free_port, http_get, wait_until

COMPOSE = REPO / "docker" / "compose.yaml"


def host_network_override(emulator: int, master: int, web: int, metrics: int) -> dict:
    def healthcheck(url: str) -> dict:
        return {"test": ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"]}

    return {"services": {
        "emulator": {
            "network_mode": "host", "ports": [],
            "command": ["emulator", "--host", "127.0.0.1", "--port", str(emulator),
                        "--config", "/opt/smload/emulator/ab-test.yaml"],
            "healthcheck": healthcheck(f"http://127.0.0.1:{emulator}/ping"),
        },
        "master": {
            "network_mode": "host", "ports": [],
            "command": ["--master", "--enable-rebalancing", "--master-bind-host=127.0.0.1", f"--master-bind-port={master}",
                        "--web-host=127.0.0.1", f"--web-port={web}", "--metrics-host=127.0.0.1", f"--metrics-port={metrics}"],
            "environment": {"LOCUST_ENDPOINT_URL": f"http://127.0.0.1:{emulator}"},
            "healthcheck": healthcheck(f"http://127.0.0.1:{web}/"),
        },
        "worker": {
            "network_mode": "host",
            "command": ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master)],
            "environment": {"LOCUST_ENDPOINT_URL": f"http://127.0.0.1:{emulator}"},
        },
        "prometheus": {"profiles": ["not-here"]},
        "grafana": {"profiles": ["not-here"]},
    }}


@pytest.fixture
def stack(request, docker, image, tmp_path):
    """``docker compose`` (the CLI plugin) for a project of this test, torn down at its end."""
    emulator, master, web, metrics = free_port(), free_port(), free_port(), free_port()
    override = tmp_path / "host-network.yaml"
    override.write_text(yaml.safe_dump(host_network_override(emulator, master, web, metrics)).replace(
        "ports: []", "ports: !reset []"))
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o777)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_", "SMLOAD_"))}
    env.update(docker.env(DOCKER_CONFIG=str(compose_plugin_config(tmp_path / "docker-config")),
                          SMLOAD_IMAGE=image, SMLOAD_REPORTS=str(reports),
                          LOCUST_USERS="6", LOCUST_SPAWN_RATE="6", LOCUST_RUN_TIME="30s"))
    project = f"smload-e2e-{os.getpid()}"

    def compose(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "compose", "-p", project, "-f", str(COMPOSE), "-f", str(override), *args],
                                env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"docker compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    compose.urls = {"emulator": f"http://127.0.0.1:{emulator}", "web": f"http://127.0.0.1:{web}",
                    "metrics": f"http://127.0.0.1:{metrics}/metrics"}
    yield compose
    logs = subprocess.run(["docker", "compose", "-p", project, "-f", str(COMPOSE), "-f", str(override), "logs"],
                          env=env, capture_output=True, text=True, timeout=60).stdout
    subprocess.run(["docker", "compose", "-p", project, "-f", str(COMPOSE), "-f", str(override), "down", "--volumes",
                    "--timeout", "20"], env=env, capture_output=True, timeout=120)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(logs[-20000:])


def get_json(url: str) -> dict:
    status, body = http_get(url)
    assert status == 200, body
    return json.loads(body)


def test_compose_up_runs_a_test_that_stops_by_itself_and_scales(stack, docker):
    stack("up", "--detach", "--wait", "--scale", "worker=2", "emulator", "master", "worker")
    web = stack.urls["web"]

    # autostarted (LOCUST_AUTOSTART from the compose file) with LOCUST_USERS over the 2 workers
    def users_per_worker() -> list[int]:
        return sorted(w["user_count"] for w in get_json(f"{web}/stats/requests")["workers"])

    wait_until(lambda: users_per_worker() == [3, 3], 90, "6 users on 2 workers", interval=0.5)
    stack("up", "--detach", "--scale", "worker=3", "--no-recreate", "worker")
    wait_until(lambda: users_per_worker() == [2, 2, 2], 60, "the scaled-up worker to get its share", interval=0.5)

    # LOCUST_RUN_TIME: the test stops by itself; in-flight requests finish (LOCUST_STOP_TIMEOUT)
    wait_until(lambda: get_json(f"{web}/stats/requests")["state"] == "stopped", 120, "the test to stop", interval=0.5)
    ours = {s["name"]: s["num_requests"] for s in get_json(f"{web}/stats/requests")["stats"] if s["name"] != "Aggregated"}
    server = get_json(f"{stack.urls['emulator']}/_emulator/stats")["endpoints"]["ab-test"]["variants"]
    assert ours == {f"ab-test/{name}": v["requests"] for name, v in server.items()}
    assert sum(ours.values()) > 100

    # every container of the stack: the image's user, read-only root
    ids = stack("ps", "--quiet").stdout.split()
    assert len(ids) == 5  # emulator, master, 3 workers
    for cid in ids:
        host_config = docker.inspect(cid)["HostConfig"]
        assert host_config["ReadonlyRootfs"] is True and "/tmp" in host_config["Tmpfs"]
        assert docker.inspect(cid)["Config"]["User"] == "10001:10001"
