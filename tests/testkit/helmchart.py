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

from testkit.support import REPO

CHART = REPO / "helm" / "sagemaker-loadtest"
RELEASE = "lt"
NAMESPACE = "loadtest"
FULLNAME = f"{RELEASE}-sagemaker-loadtest"
MASTER = f"{FULLNAME}-master"
WORKER = f"{FULLNAME}-worker"
BASE_VALUES = {"endpoint": {"name": "my-endpoint", "region": "us-east-1"}}

ROLE_ARN = "arn:aws:iam::123456789012:role/loadtest"

# The values matrix of the issue, and the other features, each on its own.
MATRIX = {
    "defaults": {},
    "hpa": {"worker": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 30}}},
    "job": {
        "mode": "job",
        "locust": {"runTime": "10m", "users": 200, "spawnRate": 20, "checks": ["p95 < 250ms"]},
        "worker": {"replicas": 4},
    },
    "job-persistence": {
        "mode": "job",
        "locust": {"runTime": "90s"},
        "reports": {"persistence": {"enabled": True, "storageClass": "gp3"}},
        "job": {"ttlSecondsAfterFinished": 3600, "activeDeadlineSeconds": 1800},
    },
    "servicemonitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}
    },
    "irsa": {"serviceAccount": {"roleArn": ROLE_ARN}},
    "pod-identity": {"serviceAccount": {"name": "loadtest-runner"}},
    "existing-secret": {"aws": {"existingSecret": "aws-credentials"}, "serviceAccount": {"create": False}},
    "locustfile-configmap": {"locustfile": {"existingConfigMap": "my-locustfile"}},
    "locustfile-content": {
        "locustfile": {"content": "from smload import SageMakerUser\n\nclass U(SageMakerUser):\n    pass\n"}
    },
    "networkpolicy": {
        "networkPolicy": {"enabled": True, "webFrom": [{"podSelector": {"matchLabels": {"app": "ingress"}}}]}
    },
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "loadtest.example.com",
            "basicAuthSecret": "loadtest-htpasswd",
            "tls": [{"hosts": ["loadtest.example.com"], "secretName": "loadtest-tls"}],
        }
    },
    "payload-files": {
        "payload": {
            "files": {"request.json": '{"inputs": "hello"}'},
            "binaryFiles": {"cat.jpg": "/9j/4AAQSkZJRg=="},
        },
        "request": {"contentType": "application/x-image"},
    },
    "payload-configmap": {
        "payload": {
            "existingConfigMap": "my-payloads",
            "order": "round-robin",
            "seed": 42,
            "file": "bodies.jsonl",
        }
    },
    "payload-example": {"payload": {"example": "rows.csv"}, "request": {"contentType": "text/csv"}},
    "dashboards": {"metrics": {"grafanaDashboards": {"enabled": True, "namespace": "monitoring"}}},
    # LLM endpoints: synthetic prompts, goodput and a tokenizer from the chart's ConfigMap; a ShareGPT
    # dataset and a tokenizer from an existing ConfigMap, the rest of the LLM options through `options`.
    "llm": {
        "llm": {
            "api": "openai",
            "promptTokens": "normal:mean=256,sd=64",
            "outputTokens": 128,
            "goodput": "ttft<500ms,tpot<50ms",
            "tokenizer": "tokenizer.json",
            "files": {"tokenizer.json": "{}"},
        },
        "locust": {"checks": ["ttft_p95 < 500ms", "goodput >= 95%"]},
    },
    "llm-dataset": {
        "mode": "job",
        "locust": {"runTime": "10m"},
        "llm": {
            "api": "stream",
            "dataset": "sharegpt.jsonl",
            "tokenizer": "tokenizer.json",
            "outputTokens": "lognormal:median=200,p99=800",
            "existingConfigMap": "chat-data",
        },
        "options": {"request-format": "tgi", "dataset-seed": 7},
    },
    "rbac": {
        "rbac": {
            "create": True,
            "subjects": [{"kind": "Group", "name": "loadtesters", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    },
    "web-login": {"web": {"login": True}, "master": {"podDisruptionBudget": {"enabled": True}}},
    "everything": {
        "endpoint": {
            "url": "https://runtime.sagemaker.us-east-1.amazonaws.com",
            "targetVariant": "variant-b",
            "customAttributes": "a=b",
        },
        "request": {
            "timeout": 30,
            "connectTimeout": 2.5,
            "client": "boto3",
            "stream": True,
            "roleArn": ROLE_ARN,
            "accept": "application/json",
        },
        "image": {
            "repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-loadtest",
            "tag": "1.2.3",
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "locust": {
            "runTime": "30m",
            "checks": ["p99 < 1s", "error_rate < 1%"],
            "extraArgs": ["--loglevel", "DEBUG"],
            "stopTimeout": 5,
        },
        "master": {
            "nodeSelector": {"pool": "loadtest"},
            "tolerations": [{"key": "loadtest", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "high",
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
        },
        "worker": {
            "replicas": 8,
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "worker"}},
                            },
                        }
                    ]
                }
            },
            "extraArgs": ["--loglevel", "DEBUG"],
        },
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "grafanaDashboards": {"enabled": True},
            "cloudwatch": {"enabled": True, "interval": 30},
        },
        "networkPolicy": {"enabled": True},
        "ingress": {"enabled": True, "host": "lt.example.com"},
        "service": {
            "type": "LoadBalancer",
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        },
        "options": {
            "session-id": "NEW_SESSION",
            "inference-id": "nightly-42",
            "enable-explanations": "`true`",
        },
    },
}


def helm_binary() -> str:
    found = shutil.which("helm") or (
        str(REPO / ".tools/helm/helm") if (REPO / ".tools/helm/helm").exists() else None
    )
    if not found:
        raise AssertionError(
            "helm is not installed: put it on PATH or run `make tools` (fetches it into .tools/helm/helm)"
        )
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
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _values_file(values: dict, directory: str) -> str:
    path = Path(directory) / "values.json"  # JSON is YAML: no quoting surprises
    path.write_text(json.dumps(values))
    return str(path)


def template(
    values: dict | None = None, *extra: str, check: bool = True, base: dict | None = BASE_VALUES
) -> subprocess.CompletedProcess:
    """``helm template`` of the chart with ``values`` on top of BASE_VALUES (a valid minimal install)."""
    with tempfile.TemporaryDirectory() as tmp:
        merged = merge(base or {}, values or {})
        return helm(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "-f",
            _values_file(merged, tmp),
            *extra,
            check=check,
        )


def lint(values: dict | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        return helm(
            "lint",
            "--strict",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "-f",
            _values_file(merge(BASE_VALUES, values or {}), tmp),
            check=False,
        )


def render(values: dict | None = None, *extra: str) -> list[dict]:
    """The rendered objects (hooks included: ``helm template`` prints them too)."""
    return [doc for doc in yaml.safe_load_all(template(values, *extra).stdout) if doc]


def notes(values: dict | None = None) -> str:
    """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster involved)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = helm(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--dry-run=client",
            "-f",
            _values_file(merge(BASE_VALUES, values or {}), tmp),
        )
    return result.stdout.split("NOTES:\n", 1)[1]


def render_error(values: dict, base: dict | None = BASE_VALUES) -> str:
    """The error of a render that must fail; fails the test if it renders."""
    result = template(values, check=False, base=base)
    assert result.returncode != 0, f"rendered although it should not have, values {values}"
    return result.stderr


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, (
        f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in matches]}"
    )
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
