"""The compose stack as a user gets it: ``docker compose config`` (Compose v2, the CLI plugin) with and
without the real-endpoint variables, and the file checked against what docs/docker.md promises.

The prometheus and grafana images cannot be pulled on these machines: their configuration is
checked instead (``promtool check config``; provisioning and dashboards parsed and cross-checked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from testkit.docker_support import compose_plugin_config
from testkit.support import REPO

COMPOSE = REPO / "docker" / "compose.yaml"
COMPOSE_AWS = REPO / "docker" / "compose.aws.yaml"
SERVICES = {"emulator", "master", "worker", "prometheus", "grafana"}
LOAD_SERVICES = ("master", "worker")

REAL_ENDPOINT = {
    "SAGEMAKER_ENDPOINT_NAME": "my-endpoint",
    "AWS_REGION": "eu-west-1",
    "AWS_PROFILE": "load-tester",
    "SMLOAD_PAYLOAD_DIR": "/srv/bodies",
    "SMLOAD_AWS_DIR": "/home/someone/.aws",
    "SMLOAD_UID": "1000",
    "SMLOAD_GID": "1000",
}


@pytest.fixture(scope="module")
def compose(docker, tmp_path_factory):
    """``docker compose ARGS`` through the CLI plugin, with a clean environment plus ``env``.
    (``docker``: the session's engine setup installs the docker CLI where it is missing.)"""
    config_dir = compose_plugin_config(tmp_path_factory.mktemp("docker-config"))
    docker = shutil.which("docker")
    assert docker, "the docker CLI is missing: apt-get install docker.io (make e2e installs it)"

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_", "SMLOAD_", "DOCKER_", "COMPOSE_"))
        }
        clean.update(DOCKER_CONFIG=str(config_dir), HOME=os.environ.get("HOME", "/root"), **(env or {}))
        return subprocess.run(
            [docker, "compose", *args], env=clean, capture_output=True, text=True, timeout=60
        )

    return run


def config(compose, *files: Path, env: dict[str, str] | None = None) -> dict:
    result = compose(*[arg for f in files for arg in ("-f", str(f))], "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port)"""
    return {p["target"]: (p.get("host_ip", ""), int(p["published"])) for p in service.get("ports", [])}


def mounts(service: dict) -> dict[str, dict]:
    return {v["target"]: v for v in service.get("volumes", [])}


def test_compose_is_the_v2_cli_plugin(compose):
    result = compose("version")
    assert result.returncode == 0, result.stderr
    assert re.search(r"Docker Compose version v2\.", result.stdout), result.stdout


def test_default_stack_targets_the_emulator(compose):
    stack = config(compose, COMPOSE)
    services = stack["services"]
    assert set(services) == SERVICES

    for name, service in services.items():
        for address, _ in published(service).values():
            assert address == "127.0.0.1", f"{name} publishes a port beyond 127.0.0.1"

    assert published(services["emulator"]) == {8080: ("127.0.0.1", 8080)}
    assert published(services["master"]) == {8089: ("127.0.0.1", 8089), 9646: ("127.0.0.1", 9646)}
    assert published(services["worker"]) == {}  # scalable: nothing to collide
    assert published(services["prometheus"]) == {9090: ("127.0.0.1", 9090)}
    assert published(services["grafana"]) == {3000: ("127.0.0.1", 3000)}

    for name in ("emulator", *LOAD_SERVICES):
        service = services[name]
        assert service["image"] == "sagemaker-loadtest:dev"
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
        assert service["user"] == "10001:10001"

    assert services["emulator"]["command"][:3] == ["emulator", "--host", "0.0.0.0"]
    assert "/opt/smload/emulator/ab-test.yaml" in services["emulator"]["command"]

    master, worker = services["master"], services["worker"]
    assert master["command"][:2] == ["--master", "--enable-rebalancing"]
    assert worker["command"] == ["--worker", "--master-host", "master"]
    for service in (master, worker):
        env = service["environment"]
        assert env["LOCUST_ENDPOINT_NAME"] == "ab-test"
        assert env["LOCUST_ENDPOINT_URL"] == "http://emulator:8080"
        assert env["LOCUST_PAYLOAD"] == "/mnt/payloads"
        assert env["LOCUST_LOCUSTFILE"] == "/opt/smload/locustfile.py"
        assert mounts(service)["/mnt/payloads"]["source"] == str(REPO / "locust" / "payloads")
        assert mounts(service)["/mnt/payloads"]["read_only"] is True
    assert master["environment"]["LOCUST_AUTOSTART"] == "true"
    assert master["environment"]["LOCUST_RUN_TIME"] == "30m"  # every test stops by itself
    assert master["environment"]["LOCUST_STOP_TIMEOUT"] == "10"  # and counts the requests in flight
    assert "LOCUST_RUN_TIME" not in worker["environment"]  # Locust refuses --run-time on workers
    assert mounts(master)["/var/lib/smload"]["source"] == str(REPO / "reports")
    assert master["depends_on"]["emulator"]["condition"] == "service_healthy"
    assert worker["depends_on"]["master"]["condition"] == "service_healthy"

    # The default stack never sees the host's AWS configuration.
    for service in services.values():
        assert "/mnt/aws" not in mounts(service)


def test_host_settings_reach_the_containers(compose):
    stack = config(
        compose,
        COMPOSE,
        env={
            "SMLOAD_IMAGE": "registry.example/smload:1.2",
            "SMLOAD_WEB_PORT": "18089",
            "LOCUST_USERS": "50",
            "SMLOAD_PAYLOAD_DIR": "/srv/bodies",
            "LOCUST_PAYLOAD": "/mnt/payloads/rows.jsonl",
            "SMLOAD_LOCUST_DIR": "/srv/tests",
            "LOCUST_LOCUSTFILE": "/mnt/locust/mine.py",
        },
    )
    master, worker = stack["services"]["master"], stack["services"]["worker"]
    assert master["image"] == worker["image"] == "registry.example/smload:1.2"
    assert published(master)[8089] == ("127.0.0.1", 18089)
    assert master["environment"]["LOCUST_USERS"] == "50"
    for service in (master, worker):
        assert service["environment"]["LOCUST_PAYLOAD"] == "/mnt/payloads/rows.jsonl"
        assert service["environment"]["LOCUST_LOCUSTFILE"] == "/mnt/locust/mine.py"
        assert mounts(service)["/mnt/payloads"]["source"] == "/srv/bodies"
        assert mounts(service)["/mnt/locust"]["source"] == "/srv/tests"


def test_real_endpoint_stack(compose):
    stack = config(compose, COMPOSE, COMPOSE_AWS, env=REAL_ENDPOINT)
    services = stack["services"]
    assert set(services) == SERVICES - {"emulator"}  # behind a profile: not started
    master, worker = services["master"], services["worker"]
    assert "depends_on" not in master
    for service in (master, worker):
        env = service["environment"]
        assert env["LOCUST_ENDPOINT_NAME"] == "my-endpoint"
        assert env["LOCUST_ENDPOINT_URL"] == ""  # not given: AWS's own runtime URL
        assert env["AWS_PROFILE"] == "load-tester" and env["AWS_REGION"] == "eu-west-1"
        assert env["LOCUST_REGION"] == "eu-west-1"  # AWS_REGION beats the profile's region
        # Not set on the host: not set in the container (None = passed through only if present).
        assert env.get("AWS_ACCESS_KEY_ID") is None and env.get("AWS_SECRET_ACCESS_KEY") is None
        assert env.get("AWS_DEFAULT_REGION") is None and env.get("AWS_EC2_METADATA_DISABLED") is None
        aws = mounts(service)["/mnt/aws"]
        assert aws["source"] == "/home/someone/.aws" and aws["read_only"] is True
        assert not aws.get("bind", {}).get("create_host_path", False)
        assert mounts(service)["/mnt/payloads"]["source"] == "/srv/bodies"
        assert service["user"] == "1000:1000"
    assert master["environment"]["LOCUST_AUTOSTART"] == "false"  # no load on a real endpoint until asked


def test_real_endpoint_credentials_from_the_environment(compose):
    env = {
        **REAL_ENDPOINT,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE12",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "token",
    }
    del env["AWS_PROFILE"]
    master = config(compose, COMPOSE, COMPOSE_AWS, env=env)["services"]["master"]["environment"]
    assert master["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLEEXAMPLE12"
    assert master["AWS_SECRET_ACCESS_KEY"] == "s3cr3t" and master["AWS_SESSION_TOKEN"] == "token"
    assert master.get("AWS_PROFILE") is None


@pytest.mark.parametrize("missing", ["SAGEMAKER_ENDPOINT_NAME", "SMLOAD_PAYLOAD_DIR"])
def test_real_endpoint_stack_names_what_is_missing(compose, missing):
    env = {k: v for k, v in REAL_ENDPOINT.items() if k != missing}
    result = compose("-f", str(COMPOSE), "-f", str(COMPOSE_AWS), "config", env=env)
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value: set {missing}" in result.stderr, result.stderr


def documented_services() -> dict[str, dict[str, set]]:
    """The service table of docs/docker.md "The local stack": service -> {ports, mounts} (backticked)."""
    text = (REPO / "docs" / "docker.md").read_text()
    section = text.split("## The local stack (`make run-local`)", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"`[a-z]+`", cells[0]):
            continue
        rows[cells[0].strip("`")] = {
            "ports": {int(p) for p in re.findall(r"`(\d+)`", cells[1])},
            "mounts": set(re.findall(r"`(/[^`]*)`", cells[2])),
        }
    return rows


def test_documented_table_matches_the_compose_file(compose):
    promised = documented_services()
    assert set(promised) == SERVICES, "docs/docker.md's service table must list every compose service"
    services = config(compose, COMPOSE)["services"]
    for name, service in services.items():
        assert set(published(service)) == promised[name]["ports"], f"{name}: ports differ from docs/docker.md"
        container_mounts = {target for target, m in mounts(service).items() if m["type"] == "bind"}
        assert container_mounts == promised[name]["mounts"], f"{name}: mounts differ from docs/docker.md"


def test_prometheus_config_is_valid_and_scrapes_the_stack(compose):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make tools (Debian package prometheus)"
    prometheus = config(compose, COMPOSE)["services"]["prometheus"]
    source = Path(mounts(prometheus)["/etc/prometheus/prometheus.yml"]["source"])
    assert source == REPO / "docker" / "prometheus" / "prometheus.yml"
    result = subprocess.run([promtool, "check", "config", source], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    scraped = {
        target
        for job in yaml.safe_load(source.read_text())["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert "master:9646" in scraped  # the exporter, by its compose service name and container port
    assert "emulator:8080" in scraped


def test_grafana_provisioning_and_dashboards(compose):
    grafana = config(compose, COMPOSE)["services"]["grafana"]
    env, volumes = grafana["environment"], mounts(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"

    def host_path(container_path: str) -> Path:
        """Where a file the container reads lives in the repository, through the bind mounts."""
        for target, volume in volumes.items():
            if volume["type"] == "bind" and (container_path + "/").startswith(target + "/"):
                return Path(volume["source"]) / container_path[len(target) :].lstrip("/")
        raise AssertionError(f"{container_path} is not mounted into grafana")

    provisioning = host_path("/etc/grafana/provisioning/datasources").parent
    datasources = [
        ds
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    prometheus = [ds for ds in datasources if ds["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["url"] == "http://prometheus:9090"
    datasource_uid = prometheus[0]["uid"]

    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers, "no dashboard provider"
    dashboard_files = []
    for provider in providers:
        folder = host_path(provider["options"]["path"])
        assert folder.is_dir(), f"provider path {provider['options']['path']} is not mounted"
        dashboard_files += sorted(folder.glob("*.json"))
    assert dashboard_files

    uids = set()
    for path in dashboard_files:
        dashboard = json.loads(path.read_text())
        assert dashboard.get("uid") and dashboard.get("title"), path
        uids.add(dashboard["uid"])
        panels = dashboard.get("panels", [])
        panels += [p for row in panels for p in row.get("panels", [])]
        assert panels, f"{path.name} has no panels"
        for panel in panels:
            refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
            for ref in filter(None, refs):
                uid = ref.get("uid") if isinstance(ref, dict) else ref
                assert uid in (datasource_uid, "${datasource}", "$datasource", "-- Grafana --", "grafana"), (
                    f"{path.name}: panel {panel.get('title')!r} uses datasource {uid!r}"
                )
    assert len(uids) == len(dashboard_files), "dashboard uids must be unique"

    home = host_path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.is_file() and home in dashboard_files


def run_local_config(compose_env: dict[str, str], *make_args: str) -> dict:
    """What `make run-local ARGS` would start: its compose invocation with ``config`` instead of ``up``."""
    result = subprocess.run(
        ["make", "-s", "-o", "image", "run-local", "COMPOSE_UP=config --format json", *make_args],
        cwd=REPO,
        env=compose_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stack, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{") :])
    assert "Locust web UI  http://127.0.0.1:8089" in result.stdout  # and it prints the URLs
    return stack


@pytest.fixture
def make_env(compose, tmp_path):
    """The environment `make` runs in: cleaned like the compose fixture's, HOME in tmp_path."""
    config_dir = compose_plugin_config(tmp_path / "docker-config")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOCUST_", "SAGEMAKER_", "SMLOAD_", "DOCKER_", "COMPOSE_"))
    }
    env.update(DOCKER_CONFIG=str(config_dir), HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return env


def test_make_run_local_mounts_your_payloads_and_locustfile(make_env, tmp_path):
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    (bodies / "rows.jsonl").write_text('{"x": 1}\n')
    mine = tmp_path / "tests" / "my_locustfile.py"
    mine.parent.mkdir()
    mine.write_text("")
    stack = run_local_config(make_env, "WORKERS=3", f"PAYLOADS={bodies}/rows.jsonl", f"LOCUSTFILE={mine}")
    for name in LOAD_SERVICES:
        service = stack["services"][name]
        assert mounts(service)["/mnt/payloads"]["source"] == str(bodies)
        assert mounts(service)["/mnt/locust"]["source"] == str(mine.parent)
        assert service["environment"]["LOCUST_PAYLOAD"] == "/mnt/payloads/rows.jsonl"
        assert service["environment"]["LOCUST_LOCUSTFILE"] == "/mnt/locust/my_locustfile.py"
        assert service["user"] == f"{os.getuid()}:{os.getgid()}"  # can write ./reports, read your files
    assert mounts(stack["services"]["master"])["/var/lib/smload"]["source"] == str(REPO / "reports")
    assert (
        stack["services"]["master"]["environment"]["LOCUST_EXPECT_WORKERS"] == "3"
    )  # autostart waits for all

    stack = run_local_config(make_env, f"PAYLOADS={bodies}")  # a directory: every file one body
    assert stack["services"]["worker"]["environment"]["LOCUST_PAYLOAD"] == "/mnt/payloads"


def test_make_run_local_real_endpoint(make_env, tmp_path):
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    env = {**make_env, "SAGEMAKER_ENDPOINT_NAME": "my-endpoint", "AWS_REGION": "eu-west-1"}
    stack = run_local_config(env, f"PAYLOADS={bodies}")
    assert "emulator" not in stack["services"]
    master = stack["services"]["master"]
    assert master["environment"]["LOCUST_ENDPOINT_NAME"] == "my-endpoint"
    assert master["environment"]["AWS_REGION"] == "eu-west-1"
    # No ~/.aws in this HOME: an empty directory is mounted, nothing is created on the host.
    assert mounts(master)["/mnt/aws"]["source"] == str(REPO / "docker" / "no-aws-config")
    assert not (tmp_path / "home" / ".aws").exists()

    (tmp_path / "home" / ".aws").mkdir()
    stack = run_local_config(env, f"PAYLOADS={bodies}")
    assert mounts(stack["services"]["worker"])["/mnt/aws"]["source"] == str(tmp_path / "home" / ".aws")
