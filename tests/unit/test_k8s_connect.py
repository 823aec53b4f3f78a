"""How ``smload k8s`` finds the API server and its namespace: kubeconfig (explicit, $KUBECONFIG,
~/.kube/config, a chosen context) or the pod's service account, as kubectl chooses. The
``kubernetes`` client loads the files; these tests check the choices and what they produce."""

from __future__ import annotations

import json

import pytest

from smload.k8s.connect import connect, kubeconfig_path
from smload.usage import UsageError


def write_kubeconfig(path, contexts: dict[str, tuple[str, str | None]], current: str) -> str:
    """contexts: name -> (server, namespace)."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": current,
                "clusters": [
                    {"name": f"c-{name}", "cluster": {"server": server}}
                    for name, (server, _) in contexts.items()
                ],
                "users": [{"name": "me", "user": {"token": "kube-token"}}],
                "contexts": [
                    {
                        "name": name,
                        "context": {
                            "cluster": f"c-{name}",
                            "user": "me",
                            **({"namespace": ns} if ns else {}),
                        },
                    }
                    for name, (_, ns) in contexts.items()
                ],
            }
        )
    )
    return str(path)


def header(configuration) -> str:
    (auth,) = configuration.auth_settings().values()
    return auth["value"]


def test_kubeconfig_choice(tmp_path):
    home = tmp_path / "home"
    in_pod = {"HOME": str(home), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert kubeconfig_path("/explicit", {"KUBECONFIG": "/env", **in_pod}) == "/explicit"
    assert kubeconfig_path(None, {"KUBECONFIG": "/a:/b", **in_pod}) == "/a:/b"
    assert kubeconfig_path(None, in_pod) is None  # in a pod without a kubeconfig: the service account
    assert kubeconfig_path(None, {"HOME": str(home)}) == str(
        home / ".kube" / "config"
    )  # elsewhere: the default, even missing
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    assert kubeconfig_path(None, in_pod) == str(
        home / ".kube" / "config"
    )  # a kubeconfig wins over the pod's account


def test_current_context_and_its_namespace(tmp_path):
    path = write_kubeconfig(
        tmp_path / "config",
        {"prod": ("https://prod.example:6443", "loadtest"), "dev": ("http://127.0.0.1:1", None)},
        "prod",
    )
    connection = connect(kubeconfig=path, environ={})
    assert connection.configuration.host == "https://prod.example:6443"
    assert header(connection.configuration) == "Bearer kube-token"
    assert connection.namespace == "loadtest"
    assert connection.source == f"kubeconfig {path}, context prod"
    assert connect(kubeconfig=path, namespace="other", environ={}).namespace == "other"


def test_chosen_context(tmp_path):
    path = write_kubeconfig(
        tmp_path / "config",
        {"prod": ("https://prod.example:6443", "loadtest"), "dev": ("http://127.0.0.1:1", None)},
        "prod",
    )
    connection = connect(context="dev", environ={"KUBECONFIG": path})
    assert connection.configuration.host == "http://127.0.0.1:1"
    assert connection.namespace == "default"  # the context names none
    with pytest.raises(UsageError) as error:
        connect(context="staging", environ={"KUBECONFIG": path})
    assert error.value.option == "--context"
    assert "no context 'staging'" in error.value.message and "prod, dev" in error.value.message


def test_unusable_kubeconfig_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as error:
        connect(kubeconfig=str(tmp_path / "missing"), environ={})
    assert error.value.option == "--kubeconfig" and str(tmp_path / "missing") in error.value.message
    broken = tmp_path / "broken"
    broken.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "contexts": [],
                "clusters": [],
                "users": [],
            }
        )
    )
    with pytest.raises(UsageError) as error:
        connect(environ={"KUBECONFIG": str(broken)})
    assert error.value.option == "KUBECONFIG" and str(broken) in error.value.message


def test_in_cluster_service_account(tmp_path):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (account / "namespace").write_text("loadtest\n")
    environ = {
        "HOME": str(tmp_path / "nohome"),
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }
    connection = connect(environ=environ, service_account_dir=account)
    assert connection.configuration.host == "https://10.96.0.1:443"
    assert connection.configuration.ssl_ca_cert == str(account / "ca.crt")
    assert header(connection.configuration) == "bearer pod-token"
    assert connection.namespace == "loadtest"  # the pod's own
    assert connection.source == "in-cluster service account"
    assert connect(namespace="other", environ=environ, service_account_dir=account).namespace == "other"

    with pytest.raises(UsageError) as error:
        connect(context="prod", environ=environ, service_account_dir=account)
    assert error.value.option == "--context"
    (account / "token").unlink()
    with pytest.raises(UsageError) as error:
        connect(environ=environ, service_account_dir=account)
    assert "in-cluster service account is unusable" in error.value.message and "token" in error.value.message
