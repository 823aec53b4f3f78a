"""Where the Kubernetes API server is and who we are, chosen the way kubectl chooses.

``--kubeconfig FILE``, else ``$KUBECONFIG``, else ``~/.kube/config`` when it exists; inside a pod with
none of these, the pod's service account (in-cluster). The namespace is ``--namespace``, else the
kubeconfig context's, else the pod's own, else ``default``. The ``kubernetes`` client does the
loading (contexts, client certificates, exec plugins such as ``aws eks get-token``, token refresh).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, InClusterConfigLoader

from ..usage import UsageError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class Connection:
    configuration: client.Configuration
    namespace: str
    source: str  # for messages: which configuration was used


def kubeconfig_path(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The kubeconfig to load, or None for in-cluster."""
    if explicit:
        return explicit
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]  # may list several files: the client merges them
    default = Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config"
    if default.exists() or not environ.get(SERVICE_HOST_ENV_NAME):
        return str(default)
    return None


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    environ: Mapping[str, str] = os.environ,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Connection:
    configuration = client.Configuration()
    path = kubeconfig_path(kubeconfig, environ)
    if path is None:
        if context:
            raise UsageError(
                "--context", "there is no kubeconfig to take a context from (running in-cluster)"
            )
        try:
            InClusterConfigLoader(
                token_filename=str(service_account_dir / "token"),
                cert_filename=str(service_account_dir / "ca.crt"),
                environ=environ,
            ).load_and_set(configuration)
        except ConfigException as error:
            raise UsageError(
                "--kubeconfig", f"no kubeconfig and the in-cluster service account is unusable ({error})"
            ) from None
        own_namespace = service_account_dir / "namespace"
        default_namespace = own_namespace.read_text().strip() if own_namespace.exists() else "default"
        return Connection(configuration, namespace or default_namespace, "in-cluster service account")

    option = "--kubeconfig" if kubeconfig else "KUBECONFIG" if environ.get("KUBECONFIG") else "--kubeconfig"
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else current
        if context and chosen is None:
            names = ", ".join(c["name"] for c in contexts)
            raise UsageError("--context", f"no context {context!r} in {path} (it has: {names})")
        config.load_kube_config(
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except ConfigException as error:
        raise UsageError(option, f"cannot use the kubeconfig {path}: {error}") from None
    except OSError as error:
        raise UsageError(option, f"cannot read the kubeconfig {path}: {error.strerror or error}") from None
    context_namespace = ((chosen or {}).get("context") or {}).get("namespace")
    name = (chosen or {}).get("name", "?")
    return Connection(
        configuration, namespace or context_namespace or "default", f"kubeconfig {path}, context {name}"
    )
