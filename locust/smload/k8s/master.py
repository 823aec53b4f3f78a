"""The Locust master's web API (what its web UI calls), reached through the API server's proxy to
the master Service: no port-forward, and the same RBAC as everything else."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from .api import Api, service_proxy_path
from .release import Release, ReleaseError

RUNNING_STATES = ("spawning", "running")


class MasterUnavailable(Exception):
    """The master could not be asked (not ready, not allowed, an error): the cluster's doing, exit 1."""


class Master:
    def __init__(self, api: Api, release: Release):
        self.api = api
        self.release = release
        self.service = release.service["metadata"]["name"]
        if "web" not in {p.get("name") for p in release.service["spec"]["ports"]}:
            raise ReleaseError(
                f"release {release.name!r} runs headless (mode={release.mode}): it has no web UI to talk to"
            )

    def _call(
        self, method: str, path: str, form: dict | None = None, accept: str = "application/json"
    ) -> bytes:
        proxy_path = service_proxy_path(self.release.namespace, self.service, "web", path)
        status, headers, body = self.api.request(method, proxy_path, form=form, accept=accept)
        if status in (301, 302, 303) or (
            status == 200 and accept == "application/json" and body.lstrip()[:1] == b"<"
        ):
            raise ReleaseError(
                "the master's web UI asks for a login (web.login): smload k8s needs it without"
            )
        if status == 503:
            raise MasterUnavailable(
                f"the master of {self.release.name!r} does not answer (is its pod ready? kubectl -n "
                f"{self.release.namespace} get pods -l app.kubernetes.io/instance={self.release.name})"
            )
        if status == 403:
            raise MasterUnavailable(
                f"not allowed to reach the master through the API server ({body[:200].decode(errors='replace')}): "
                "install the chart with rbac.create=true and rbac.subjects naming you"
            )
        if not 200 <= status < 300:
            raise MasterUnavailable(
                f"{method} {path} on the master answered {status}: {body[:200].decode(errors='replace')}"
            )
        return body

    def stats(self) -> dict:
        """/stats/requests: state, user_count, workers, totals (the web UI's live view)."""
        return json.loads(self._call("GET", "stats/requests"))

    def swarm(
        self, users: int, spawn_rate: float, run_time: str, extra: dict[str, str] | None = None
    ) -> dict:
        """Start a test with the form fields the web UI sends (locust/web.py, swarm()); ``extra``: custom
        parameters (the open-loop fields)."""
        form = {
            "user_count": str(users),
            "spawn_rate": str(spawn_rate),
            "run_time": run_time,
            **(extra or {}),
        }
        answer = json.loads(self._call("POST", "swarm", form=form))
        if not answer.get("success"):
            raise ReleaseError(f"the master refused to start: {answer.get('message')}")
        return answer

    def stop(self) -> None:
        self._call("POST", "stop")

    def checks(self, expressions: list[str]) -> dict:
        """The checks evaluated by the master on the test that just ran (smload.web_checks)."""
        try:
            return json.loads(
                self._call("GET", "smload/checks?" + urlencode([("check", e) for e in expressions]))
            )
        except MasterUnavailable as error:
            if " answered 404" in str(error):
                raise MasterUnavailable(
                    "the master does not evaluate checks (/smload/checks): its locustfile does not "
                    "load smload (from smload import SageMakerUser does)"
                ) from None
            raise

    def report(self) -> bytes:
        """The HTML report of the current (or last) test, without the web UI's download link."""
        return self._call("GET", "stats/report?download=1", accept="text/html")


def connected_workers(stats: dict) -> int:
    """Workers the master counts (a worker that missed its heartbeats is 'missing' until it goes)."""
    return sum(1 for worker in stats.get("workers", []) if worker.get("state") != "missing")


def aggregated(stats: dict) -> dict:
    """The "Aggregated" row of /stats/requests (the last one)."""
    rows = stats.get("stats") or []
    return rows[-1] if rows else {}
