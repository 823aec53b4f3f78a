"""A release of the chart "deployed" on this machine for the ``smload k8s`` tests: the chart's objects
rendered by the real ``helm`` and served by the API server stand-in (``k8s_standin``; no API server
can run here), and behind the master Service a real Locust master with real workers (the bundled
locustfile) against the emulator. The stand-in's scale patches start and stop worker processes, as
the Deployment controller would start and delete pods.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.helmchart import MASTER, NAMESPACE, RELEASE, WORKER, render
from testkit.k8s_standin import StandIn
from testkit.support import (
    BIN,
    REPO,
    Emulator,
    Proc,
    Procs,
    answers,
    aws_env,
    free_port,
    http_get,
    locust_cmd,
    start_emulator,
    wait_until,
)

TOKEN = "smload-test-token"


@dataclass
class Deployed:
    procs: Procs
    tmp: Path
    emulator: Emulator
    web_port: int
    master_port: int
    standin: StandIn
    kubeconfig: str
    master: Proc
    workers: list[Proc] = field(default_factory=list)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def stats(self) -> dict:
        """The master's /stats/requests, read directly (not through the stand-in)."""
        return json.loads(http_get(f"{self.web}/stats/requests")[1])

    def connected(self) -> int:
        return sum(1 for w in self.stats()["workers"] if w["state"] != "missing")

    def wait_ready(self) -> None:
        """Until every worker can take a test: after one, Locust's workers rest for the stop timeout
        (out of the master's list) and a /swarm in that time starts nothing."""
        alive = len([w for w in self.workers if w.alive()])
        wait_until(lambda: self.stats()["worker_count"] == alive, 60, f"{alive} workers ready")

    def scale_to(self, replicas: int) -> None:
        """The Deployment controller's part: as many worker processes as replicas."""
        self.workers = [w for w in self.workers if w.alive()]
        while len(self.workers) < replicas:
            self.workers.append(
                self.procs.start(
                    "worker",
                    locust_cmd(
                        "--worker", "--master-host", "127.0.0.1", "--master-port", str(self.master_port)
                    ),
                )
            )
        while len(self.workers) > replicas:
            self.workers.pop().stop()  # SIGTERM, like a pod deletion: the worker says goodbye to the master

    def close(self) -> None:
        self.standin.stop()
        self.procs.stop_all()

    def smload_k8s(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """``smload k8s ARGS --release lt`` as a user runs it, with the stand-in's kubeconfig."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "AWS_"))}
        env.update(KUBECONFIG=self.kubeconfig, HOME=str(self.tmp), PYTHONUNBUFFERED="1")
        return subprocess.run(
            [str(BIN / "smload"), "k8s", *args],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def deploy(
    procs: Procs,
    tmp: Path,
    workers: int = 1,
    variant: str = "name=variant-a,weight=1,instances=2,concurrency=8,latency_ms=5",
    values: dict | None = None,
) -> Deployed:
    """Emulator, the chart's objects on the stand-in, a master (as the chart's master container runs it:
    its LOCUST_* environment and arguments) and ``workers`` workers."""
    emulator = start_emulator(procs, "--endpoint", "ab-test", "--variant", variant)
    web_port, master_port, metrics_port = free_port(), free_port(), free_port()
    chart_values = {
        "endpoint": {"name": "ab-test", "url": emulator.url},
        "ports": {"web": web_port, "master": master_port, "metrics": metrics_port},
        "locust": {"users": 4, "spawnRate": 4},
        "worker": {"replicas": workers},
        **(values or {}),
    }
    objects = render(chart_values)
    master_container = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == MASTER
    )
    (container,) = master_container["spec"]["template"]["spec"]["containers"]
    env = aws_env(**{e["name"]: e["value"] for e in container["env"] if "value" in e})
    # What differs from the pod: the example payload's path on this checkout, and 127.0.0.1 only.
    env.update(
        LOCUST_PAYLOAD=str(REPO / "locust" / "payloads" / "small.json"),
        LOCUST_WEB_HOST="127.0.0.1",
        LOCUST_MASTER_BIND_HOST="127.0.0.1",
        LOCUST_METRICS_HOST="127.0.0.1",
    )
    master = procs.start("master", locust_cmd(*container["args"]), env=env)
    wait_until(
        lambda: answers(f"http://127.0.0.1:{web_port}/stats/requests") or not master.alive(),
        60,
        "the master's web UI",
    )
    assert master.alive(), master.log()

    deployed: Deployed
    standin = StandIn(
        objects,
        TOKEN,
        NAMESPACE,
        backends={(MASTER, "web"): f"127.0.0.1:{web_port}"},
        on_scale=lambda name, replicas: deployed.scale_to(replicas) if name == WORKER else None,
        ready=lambda name: 1 if name == MASTER else len([w for w in deployed.workers if w.alive()]),
    )
    standin.start()
    deployed = Deployed(
        procs,
        tmp,
        emulator,
        web_port,
        master_port,
        standin,
        standin.kubeconfig(tmp / "kubeconfig", namespace=NAMESPACE),
        master,
    )
    deployed.scale_to(workers)
    wait_until(lambda: deployed.connected() == workers, 60, f"{workers} workers to connect")
    return deployed


__all__ = ["Deployed", "RELEASE", "deploy"]
