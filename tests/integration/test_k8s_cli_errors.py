"""``smload k8s`` when things are not as they should be: one line naming the problem and the way out,
exit code 2 for what the user must change, 1 when the cluster did not do it, never a traceback.
Against the API server stand-in (``tests/k8s_standin.py``: no API server can run here) serving the
chart's rendered objects; no Locust process is needed for these."""

from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest
from testkit.helmchart import MASTER, NAMESPACE, RELEASE, WORKER, render
from testkit.k8s_release import TOKEN
from testkit.k8s_standin import StandIn
from testkit.support import BIN, free_port


def smload_k8s(kubeconfig: str, tmp, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "AWS_"))}
    env.update(KUBECONFIG=kubeconfig, HOME=str(tmp))
    return subprocess.run(
        [str(BIN / "smload"), "k8s", *args], env=env, cwd=tmp, capture_output=True, text=True, timeout=60
    )


def fails(result: subprocess.CompletedProcess, code: int, message: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("smload k8s: error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture
def standin(request, tmp_path):
    """A stand-in serving the chart rendered with the test's values (parametrize indirectly)."""
    values = copy.deepcopy(getattr(request, "param", {}))
    options = values.pop("_standin", {})
    with StandIn(render(values), TOKEN, NAMESPACE, **options) as server:
        server.kubeconfig_path = server.kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
        yield server
    assert server.unexpected == []


def test_unknown_release(standin, tmp_path):
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "status", "--release", "nope"),
        2,
        f"no sagemaker-loadtest release 'nope' in namespace '{NAMESPACE}'",
    )
    fails(
        smload_k8s(
            standin.kubeconfig_path, tmp_path, "status", "--release", RELEASE, "--namespace", "elsewhere"
        ),
        2,
        f"no sagemaker-loadtest release '{RELEASE}' in namespace 'elsewhere'",
    )


@pytest.mark.parametrize("standin", [{"worker": {"autoscaling": {"enabled": True}}}], indirect=True)
def test_scale_refuses_when_the_hpa_owns_the_workers(standin, tmp_path):
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "scale", "--release", RELEASE, "--workers", "5"),
        2,
        f"hpa/{WORKER} owns the worker count: change worker.autoscaling",
    )
    assert standin.requests("PATCH") == []


JOB_STATUS = {
    "_standin": {
        "statuses": {
            MASTER: {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            WORKER: {
                "active": 0,
                "failed": 1,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            },
        }
    },
    "mode": "job",
    "locust": {"runTime": "5m"},
}


@pytest.mark.parametrize("standin", [JOB_STATUS], indirect=True)
def test_job_mode(standin, tmp_path):
    result = smload_k8s(standin.kubeconfig_path, tmp_path, "status", "--release", RELEASE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"release {RELEASE} in namespace {NAMESPACE}: mode job",
        f"master   job/{MASTER}: 0 active, 1 succeeded, 0 failed: complete",
        f"workers  job/{WORKER}: 0 active, 0 succeeded, 1 failed: failed (BackoffLimitExceeded)",
    ]
    assert standin.requests(contains="/jobs") and not standin.requests(contains="/proxy/")
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "scale", "--release", RELEASE, "--workers", "5"),
        2,
        "runs as Jobs (mode=job): its worker count is fixed by worker.replicas",
    )
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "run", "--release", RELEASE),
        2,
        f"runs its test as Jobs (mode=job): wait for job/{MASTER} instead",
    )


def test_master_not_answering(standin, tmp_path):
    """The Service has no ready endpoint (the stand-in has no backend): the API server answers 503."""
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "status", "--release", RELEASE),
        1,
        f"the master of '{RELEASE}' does not answer (is its pod ready?",
    )


def test_run_needs_a_run_time(standin, tmp_path):
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "run", "--release", RELEASE),
        2,
        "--run-time: required: the release sets no locust.runTime",
    )


@pytest.mark.parametrize(
    "standin",
    [{"_standin": {"forbidden": (r"PATCH /apis/apps/v1/namespaces/\w+/deployments/[\w-]+/scale",)}}],
    indirect=True,
)
def test_rbac_denies(standin, tmp_path):
    fails(
        smload_k8s(standin.kubeconfig_path, tmp_path, "scale", "--release", RELEASE, "--workers", "2"),
        1,
        "Kubernetes API: PATCH /apis/apps/v1/namespaces/loadtest/deployments/lt-sagemaker-loadtest-worker/scale: 403 Forbidden",
    )


def test_wrong_credentials(standin, tmp_path):
    config = json.loads(open(standin.kubeconfig_path).read())
    config["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "wrong").write_text(json.dumps(config))
    fails(
        smload_k8s(str(tmp_path / "wrong"), tmp_path, "status", "--release", RELEASE),
        1,
        f"Kubernetes API: GET /apis/apps/v1/namespaces/{NAMESPACE}/deployments: 401 Unauthorized",
    )


def test_api_server_unreachable(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gone",
                "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
            }
        )
    )
    fails(
        smload_k8s(str(kubeconfig), tmp_path, "status", "--release", RELEASE),
        1,
        "cannot reach the API server at http://127.0.0.1:",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["scale", "--release", RELEASE, "--workers", "-1"], "--workers: must be 0 or more, not -1"),
        (
            ["run", "--release", RELEASE, "--run-time", "ten minutes"],
            "--run-time: 'ten minutes' is not a time span",
        ),
        (["run", "--release", RELEASE, "--spawn-rate", "0"], "--spawn-rate: must be more than 0"),
        (["status", "--release", RELEASE, "--context", "nope"], "--context: no context 'nope'"),
    ],
)
def test_bad_options(standin, tmp_path, args, message):
    fails(smload_k8s(standin.kubeconfig_path, tmp_path, *args), 2, message)
