"""A release of the sagemaker-loadtest chart, found by the labels the chart puts on every object."""

from __future__ import annotations

from dataclasses import dataclass

from .api import Api

PART_OF = "app.kubernetes.io/part-of=sagemaker-loadtest"


class ReleaseError(Exception):
    """The release is missing or not in a state the command can work with (one line, for the user)."""


@dataclass
class Release:
    name: str
    namespace: str
    mode: str  # deployment | job
    master: dict  # the master Deployment or Job
    worker: dict  # the worker Deployment or Job
    service: dict  # the master Service
    hpa: dict | None  # the HPA that owns the worker count, if any

    @property
    def master_env(self) -> dict[str, str]:
        """The master container's plain environment: the test settings the chart configured."""
        (container,) = [
            c for c in self.master["spec"]["template"]["spec"]["containers"] if c["name"] == "master"
        ]
        return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    @property
    def worker_replicas(self) -> int:
        return int(self.worker["spec"].get("replicas") or 0)

    @property
    def worker_ready(self) -> int:
        return int(self.worker.get("status", {}).get("readyReplicas") or 0)

    def scale_path(self) -> str:
        return (
            f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.worker['metadata']['name']}/scale"
        )


def find_release(api: Api, namespace: str, name: str) -> Release:
    selector = f"app.kubernetes.io/instance={name},{PART_OF}"
    workloads = api.list(f"/apis/apps/v1/namespaces/{namespace}/deployments", selector)
    mode = "deployment"
    if not workloads:
        workloads, mode = api.list(f"/apis/batch/v1/namespaces/{namespace}/jobs", selector), "job"
    by_role = {w["metadata"]["labels"].get("app.kubernetes.io/component"): w for w in workloads}
    if "master" not in by_role or "worker" not in by_role:
        raise ReleaseError(
            f"no sagemaker-loadtest release {name!r} in namespace {namespace!r} "
            f"(no Deployments or Jobs labelled app.kubernetes.io/instance={name}): check --release and --namespace"
        )
    services = api.list(
        f"/api/v1/namespaces/{namespace}/services", f"{selector},app.kubernetes.io/component=master"
    )
    if not services:
        raise ReleaseError(f"release {name!r} has no master Service in namespace {namespace!r}")
    hpa = None
    if mode == "deployment":
        worker_name = by_role["worker"]["metadata"]["name"]
        hpas = api.list(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", selector)
        hpa = next((h for h in hpas if h["spec"]["scaleTargetRef"].get("name") == worker_name), None)
    return Release(name, namespace, mode, by_role["master"], by_role["worker"], services[0], hpa)
