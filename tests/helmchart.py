"""Rendering the Helm chart with the real ``helm`` binary, for the chart tests and the container test.

``helm`` comes from the user's PATH, else from ``.tools/helm/helm`` (``make tools`` fetches it); when
neither exists the test fails with that message: a missing tool is a failure, never a skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from support import REPO

CHART = REPO / "helm" / "sagemaker-loadtest"
RELEASE = "lt"
NAMESPACE = "loadtest"
FULLNAME = f"{RELEASE}-sagemaker-loadtest"
MASTER = f"{FULLNAME}-master"
WORKER = f"{FULLNAME}-worker"
BASE_VALUES = {"endpoint": {"name": "my-endpoint", "region": "us-east-1"}}


def helm_binary() -> str:
    found = shutil.which("helm") or (str(REPO / ".tools/helm/helm") if (REPO / ".tools/helm/helm").exists() else None)
    if not found:
        raise AssertionError("helm is not installed: put it on PATH or run `make tools` (fetches it into .tools/helm/helm)")
    return found


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def merge(base: dict, override: dict) -> dict:
    """Values merged the way Helm merges them (maps deep, everything else replaced)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _values_file(values: dict, directory: str) -> str:
    path = Path(directory) / "values.json"  # JSON is YAML: no quoting surprises
    path.write_text(json.dumps(values))
    return str(path)


def template(values: dict | None = None, *extra: str, check: bool = True, base: dict | None = BASE_VALUES) -> subprocess.CompletedProcess:
    """``helm template`` of the chart with ``values`` on top of BASE_VALUES (a valid minimal install)."""
    with tempfile.TemporaryDirectory() as tmp:
        merged = merge(base or {}, values or {})
        return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", _values_file(merged, tmp), *extra, check=check)


def lint(values: dict | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        return helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, "-f", _values_file(merge(BASE_VALUES, values or {}), tmp), check=False)


def render(values: dict | None = None, *extra: str) -> list[dict]:
    """The rendered objects (hooks included: ``helm template`` prints them too)."""
    return [doc for doc in yaml.safe_load_all(template(values, *extra).stdout) if doc]


def notes(values: dict | None = None) -> str:
    """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster involved)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
                      "-f", _values_file(merge(BASE_VALUES, values or {}), tmp))
    return result.stdout.split("NOTES:\n", 1)[1]


def render_error(values: dict, base: dict | None = BASE_VALUES) -> str:
    """The error of a render that must fail; fails the test if it renders."""
    result = template(values, check=False, base=base)
    assert result.returncode != 0, f"rendered although it should not have, values {values}"
    return result.stderr


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def kinds(objects: list[dict]) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in objects)


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    (only,) = pod_spec(workload)["containers"]
    return only


def env(container_spec: dict) -> dict[str, Any]:
    """name -> value (or the valueFrom dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_spec.get("env", [])}
