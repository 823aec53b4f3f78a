"""The chart's containers as rendered, run on Docker against the emulator.

``helm template`` renders the chart; the master and worker pod specs become ``docker run`` exactly:
image, command and args, environment, ports (host network), the security context (UID 10001,
read-only root, all capabilities dropped, no privilege escalation), the resource limits, and the
volumes: ``/tmp`` as a tmpfs of the emptyDir's size, the payload ConfigMap as a directory laid out
the way the kubelet writes one (``..data`` symlinks), the reports volume. The master Service's name
resolves to 127.0.0.1 (``--add-host``), as the cluster DNS would resolve it to the master pod.

What differs from a pod is set through values only, never by editing the rendered spec: the ports
are free ports of this machine (``ports.web|master|metrics``: containers share the host's network
here, as every pod has its own IP there), and the master listens on 127.0.0.1 only
(``master.extraEnv`` LOCUST_WEB_HOST and LOCUST_MASTER_BIND_HOST, ``locust.extraArgs`` for the
exporter's ``--metrics-host``): tests keep their traffic on this machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from testkit.docker_support import IMAGE, TEST_AWS_ENV, Container, Containers
from testkit.helmchart import MASTER, WORKER, render, template
from testkit.support import answers, free_port, http_get, http_post, wait_until

REQUEST = '{"inputs": "hello from a ConfigMap"}'
LOCAL_ONLY = {
    "master": {
        "extraEnv": [
            {"name": "LOCUST_WEB_HOST", "value": "127.0.0.1"},
            {"name": "LOCUST_MASTER_BIND_HOST", "value": "127.0.0.1"},
        ]
    }
}


def chart_values(emulator_url: str, ports: dict[str, int], **more) -> dict:
    repository, tag = IMAGE.split(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "endpoint": {"name": "ab-test", "url": emulator_url, "region": "us-east-1"},
        "ports": ports,
        "payload": {"files": {"request.json": REQUEST}},
        "locust": {"extraArgs": ["--metrics-host", "127.0.0.1"]},
        **LOCAL_ONLY,
    }
    for key, value in more.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def kubelet_configmap(directory: Path, data: dict[str, str]) -> Path:
    """A ConfigMap volume as the kubelet's atomic writer lays it out: the files in a timestamped
    directory, ``..data`` pointing at it, and one symlink per key through ``..data``."""
    stamp = directory / "..2026_11_23_04_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, content in data.items():
        (stamp / key).write_text(content)
        (stamp / key).chmod(0o644)
        os.symlink(f"..data/{key}", directory / key)
    os.symlink(stamp.name, directory / "..data")
    for path in (directory, stamp):
        path.chmod(0o755)
    return directory


def docker_options(pod: dict, container: dict, volumes: dict[str, str]) -> dict:
    """``Containers.start`` options for a rendered pod's container. ``volumes``: volume name -> host path."""
    context, pod_context = container["securityContext"], pod["securityContext"]
    extra = [
        "--add-host",
        f"{MASTER}:127.0.0.1",
        "--user",
        f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}",
        "--group-add",
        str(pod_context["fsGroup"]),
    ]
    assert pod_context["runAsNonRoot"] and pod_context["seccompProfile"] == {
        "type": "RuntimeDefault"
    }  # Docker's default profile
    if context["readOnlyRootFilesystem"]:
        extra.append("--read-only")
    if context["allowPrivilegeEscalation"] is False:
        extra += ["--security-opt", "no-new-privileges"]
    for capability in context["capabilities"]["drop"]:
        extra += ["--cap-drop", capability]
    limits = container["resources"]["limits"]
    if "cpu" in limits:
        extra += ["--cpus", str(limits["cpu"])]
    extra += [
        "--memory",
        limits["memory"].replace("Gi", "g").replace("Mi", "m"),
    ]  # the kubelet's cgroup limit
    pod_volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = []
    for mount in container.get("volumeMounts", []):
        volume = pod_volumes[mount["name"]]
        if "emptyDir" in volume and mount["mountPath"] == "/tmp":
            size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m")
            extra += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={size},uid={pod_context['runAsUser']}"]
        else:
            mounts.append(
                f"{volumes[mount['name']]}:{mount['mountPath']}" + (":ro" if mount.get("readOnly") else "")
            )
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert all("value" in e for e in container.get("env", [])), (
        "only plain values: no valueFrom in these pods"
    )
    command = container.get("command", [])
    return {
        "args": [*command[1:], *container.get("args", [])],
        "entrypoint": command[0] if command else None,
        "env": {**TEST_AWS_ENV, **env},  # the credentials IRSA or a Secret would provide
        "volumes": tuple(mounts),
        "extra": tuple(extra),
        "read_only": False,  # --read-only and the /tmp tmpfs come from the spec, above
    }


def start(containers: Containers, role: str, pod: dict, volumes: dict[str, str]) -> Container:
    (container,) = pod["containers"]
    options = docker_options(pod, container, volumes)
    return containers.start(role, *options.pop("args"), **options)


def workload(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    (container,) = found["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    return found["spec"]["template"]["spec"]


def stats(web_port: int) -> dict:
    status, body = http_get(f"http://127.0.0.1:{web_port}/stats/requests")
    assert status == 200, body
    return json.loads(body)


def emulator_stats(port: int) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{port}/_emulator/stats")[1])


def writable_dir(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 10001, 10001)
    return str(path)


@pytest.fixture
def emulator(containers):
    port = free_port()
    containers.start(
        "emulator",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--endpoint",
        "ab-test",
        "--variant",
        "name=variant-a,weight=0.5,instances=2,concurrency=8,latency_ms=5",
        "--variant",
        "name=variant-b,weight=0.5,instances=2,concurrency=8,latency_ms=5",
    )
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/ping"), 60, "the emulator container")
    return port


def test_deployment_containers_as_rendered(containers, emulator, tmp_path):
    ports = {"web": free_port(), "master": free_port(), "metrics": free_port()}
    objects = render(
        chart_values(
            f"http://127.0.0.1:{emulator}", ports, worker={"replicas": 2}, locust={"users": 8, "spawnRate": 8}
        )
    )
    master_pod, worker_pod = workload(objects, "Deployment", MASTER), workload(objects, "Deployment", WORKER)
    volumes = {
        "payloads": str(kubelet_configmap(tmp_path / "payloads", {"request.json": REQUEST})),
        "reports": writable_dir(tmp_path / "reports"),
    }

    master = start(containers, "master", master_pod, volumes)
    workers = [
        start(containers, f"worker{i}", worker_pod, volumes) for i in range(2)
    ]  # the Deployment's 2 replicas
    web = f"http://127.0.0.1:{ports['web']}"
    wait_until(lambda: answers(f"{web}/") or not master.running(), 90, "the master's web UI")
    assert master.top_users() == {"10001"}
    wait_until(lambda: stats(ports["web"])["worker_count"] == 2, 90, "2 workers to connect")

    # The readiness and liveness probes' request, as the kubelet sends it.
    probe = next(c for c in master_pod["containers"])["readinessProbe"]["httpGet"]
    assert http_get(f"http://127.0.0.1:{ports[probe['port']]}{probe['path']}")[0] == 200

    # A test from the web UI's form: users, rate; the endpoint and payload come from the chart.
    status, body = http_post(
        f"{web}/swarm", b"user_count=8&spawn_rate=8", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200 and json.loads(body)["success"], body
    wait_until(
        lambda: (
            stats(ports["web"])["user_count"] == 8 and stats(ports["web"])["stats"][-1]["num_requests"] > 50
        ),
        90,
        "8 users sending requests",
    )
    assert stats(ports["web"])["stats"][-1]["num_failures"] == 0, stats(ports["web"])["errors"]
    requested = emulator_stats(emulator)["endpoints"]["ab-test"]["variants"]
    assert set(requested) == {"variant-a", "variant-b"}  # the traffic split reached both variants

    # Metrics are served by the master's exporter, on the metrics port the Service and annotations name.
    names = {sample.labels.get("name") for sample in samples(ports["metrics"], "locust_requests_total")}
    assert {"ab-test/variant-a", "ab-test/variant-b"} <= names
    assert sum(s.value for s in samples(ports["metrics"], "locust_workers")) == 2

    # kubectl scale --replicas=4: two more pods of the same spec; rebalancing spreads the 8 users.
    workers += [start(containers, f"worker{i}", worker_pod, volumes) for i in (2, 3)]
    wait_until(lambda: stats(ports["web"])["worker_count"] == 4, 90, "4 workers")
    wait_until(
        lambda: sorted(w["user_count"] for w in stats(ports["web"])["workers"]) == [2, 2, 2, 2],
        90,
        "the 8 users spread over the 4 workers (2 each)",
    )
    for worker in workers:
        assert worker.running() and worker.top_users() == {"10001"}

    # Stop; nothing lost: after the workers' last reports, Locust counted what the emulator received.
    http_post(f"{web}/stop")
    wait_until(lambda: stats(ports["web"])["state"] == "stopped", 60, "the test to stop")
    wait_until(
        lambda: stats(ports["web"])["stats"][-1]["num_requests"] == emulator_stats(emulator)["requests"],
        30,
        "Locust's count to equal the emulator's",
    )
    counted = stats(ports["web"])["stats"][-1]["num_requests"]
    time.sleep(
        4
    )  # not a wait for a condition: the counts must *stay* equal for longer than a report interval (3 s)
    assert stats(ports["web"])["stats"][-1]["num_requests"] == counted == emulator_stats(emulator)["requests"]
    assert (
        sum(s.value for s in samples(ports["metrics"], "locust_requests_total")) == counted
    )  # the exporter too

    # `helm test`: the chart's test hook pod, run the same way, finds the master through its Service name.
    hook = yaml.safe_load(
        template(
            chart_values(f"http://127.0.0.1:{emulator}", ports),
            "--show-only",
            "templates/tests/test-master.yaml",
        ).stdout
    )
    options = docker_options(hook["spec"], hook["spec"]["containers"][0], {})
    code, out = containers.run("helm-test", *options.pop("args"), **options)
    assert code == 0 and "master answers: state=stopped" in out, out


@pytest.mark.parametrize("checks, exit_code", [(["error_rate<1%", "p99<5s"], 0), (["rps>=1000000"], 3)])
def test_job_containers_as_rendered(containers, emulator, tmp_path, checks, exit_code):
    """mode=job: the master Job's container runs the test headless and its exit code is the verdict;
    the worker Job's containers exit 0 when the master quits, so that Job completes too."""
    ports = {"web": free_port(), "master": free_port(), "metrics": free_port()}
    objects = render(
        chart_values(
            f"http://127.0.0.1:{emulator}",
            ports,
            mode="job",
            worker={"replicas": 2},
            locust={"users": 4, "spawnRate": 4, "runTime": "5s", "checks": checks},
        )
    )
    master_pod, worker_pod = workload(objects, "Job", MASTER), workload(objects, "Job", WORKER)
    assert master_pod["restartPolicy"] == "Never" and worker_pod["restartPolicy"] == "OnFailure"
    reports = Path(writable_dir(tmp_path / "reports"))
    volumes = {
        "payloads": str(kubelet_configmap(tmp_path / "payloads", {"request.json": REQUEST})),
        "reports": str(reports),
    }

    master = start(containers, "job-master", master_pod, volumes)
    workers = [start(containers, f"job-worker{i}", worker_pod, volumes) for i in range(2)]
    code = master.wait(240)
    logs = master.logs()
    assert code == exit_code, logs
    for worker in workers:
        assert worker.wait(60) == 0, worker.logs()  # Locust's "quit" from the master: the worker Job succeeds

    written = {p.name for p in reports.iterdir()}
    assert {
        "report.html",
        "report.json",
        "locust.html",
        "locust.json",
        "locust_stats.csv",
        "locust_failures.csv",
    } <= written, written
    report = json.loads((reports / "report.json").read_text())
    assert [c["passed"] for c in report["checks"]] == [exit_code == 0] * len(checks)
    locust_total = sum(entry["num_requests"] for entry in json.loads((reports / "locust.json").read_text()))
    assert locust_total == emulator_stats(emulator)["requests"] > 0  # nothing lost, in headless mode either


def samples(port: int, family: str) -> list:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return [
        s
        for f in text_string_to_metric_families(body.decode())
        if f.name == family.removesuffix("_total")
        for s in f.samples
        if s.name == family
    ]
