"""The chart, rendered by the real ``helm`` over a matrix of values: ``helm lint --strict`` passes,
every object validates against the Kubernetes OpenAPI schemas of 1.29 (the oldest supported
version, Chart.yaml's kubeVersion) and of the newest version kubernetes-validate knows, in strict
mode (unknown fields fail), and the fields that make the chart right are asserted one by one.

No Kubernetes API server can run here: schema validation and field assertions stand in for
``kubectl apply --dry-run=server``.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, latest_version
from testkit.helmchart import (
    FULLNAME,
    MASTER,
    MATRIX,
    NAMESPACE,
    RELEASE,
    ROLE_ARN,
    WORKER,
    container,
    env,
    find,
    kinds,
    lint,
    notes,
    pod_spec,
    render,
    template,
)

K8S_VERSIONS = ["1.29.0", latest_version()]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {case: render(values) for case, values in MATRIX.items()}


@pytest.mark.parametrize("case", MATRIX)
def test_lint_strict(case):
    result = lint(MATRIX[case])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout, result.stdout


@pytest.fixture(scope="module")
def rendered_for() -> dict[tuple[str, str], list[dict]]:
    """Rendered for each Kubernetes version (helm template --kube-version: Chart.yaml's kubeVersion holds)."""
    return {
        (case, version): render(values, "--kube-version", version)
        for case, values in MATRIX.items()
        for version in K8S_VERSIONS
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("case", MATRIX)
def test_every_object_validates_strictly(rendered_for, case, version):
    unvalidated = []
    for obj in rendered_for[(case, version)]:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            unvalidated.append(obj["kind"])
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(
                f"{case}: {obj['kind']}/{obj['metadata']['name']} is invalid for Kubernetes {version}: {path}: {error.message}"
            )
    # A CRD has no schema in kubernetes-validate: its fields are asserted in test_service_monitor.
    assert set(unvalidated) <= {"ServiceMonitor"}, unvalidated


@pytest.mark.parametrize("case", MATRIX)
def test_labels_and_names(rendered, case):
    for obj in rendered[case]:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "sagemaker-loadtest"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "sagemaker-loadtest"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "sagemaker-loadtest-0.1.0"
        named_by_user = obj["kind"] == "ServiceAccount" and MATRIX[case].get("serviceAccount", {}).get("name")
        assert obj["metadata"]["name"].startswith(FULLNAME) or named_by_user
        dashboards_namespace = MATRIX[case].get("metrics", {}).get("grafanaDashboards", {}).get("namespace")
        if obj["metadata"]["name"] == f"{FULLNAME}-dashboards" and dashboards_namespace:
            assert obj["metadata"]["namespace"] == dashboards_namespace  # where the Grafana sidecar looks
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE
        template = obj.get("spec", {}).get("template")
        if template:
            # The selector picks this role's pods and no other role's.
            selector = obj["spec"].get("selector", {}).get("matchLabels")
            component = labels["app.kubernetes.io/component"]
            assert template["metadata"]["labels"]["app.kubernetes.io/component"] == component
            if selector:
                assert selector == {
                    "app.kubernetes.io/name": "sagemaker-loadtest",
                    "app.kubernetes.io/instance": RELEASE,
                    "app.kubernetes.io/component": component,
                }
                assert selector.items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("case", MATRIX)
def test_no_credentials_in_any_object(rendered, case):
    """Credentials come from IRSA, Pod Identity or an existing Secret, never from values."""
    text = repr(rendered[case])
    for secret_name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert secret_name not in text
    assert not [o for o in rendered[case] if o["kind"] == "Secret"]


@pytest.mark.parametrize("case", MATRIX)
def test_pods_are_locked_down(rendered, case):
    for obj in rendered[case]:
        if obj["kind"] not in ("Deployment", "Job", "Pod"):
            continue
        spec = obj["spec"] if obj["kind"] == "Pod" else pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for c in spec["containers"]:
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }
            assert (
                c["resources"]["requests"]["cpu"]
                and c["resources"]["requests"]["memory"]
                and c["resources"]["limits"]["memory"]
            )
        if obj["kind"] == "Pod":
            continue
        # Read-only root: /tmp (and the reports on the master) are the writable paths.
        mounts = {m["mountPath"]: m["name"] for m in container(obj)["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes[mounts["/tmp"]]["emptyDir"] == {"sizeLimit": "256Mi"}
        if "-master" in obj["metadata"]["name"]:
            assert "/var/lib/smload" in mounts


def master_and_worker(objects):
    kind = "Job" if find(objects, "Service")["spec"]["ports"][0]["name"] != "web" else "Deployment"
    return find(objects, kind, MASTER), find(objects, kind, WORKER)


def test_defaults(rendered):
    objects = rendered["defaults"]
    assert kinds(objects) == [
        ("Deployment", MASTER),
        ("Deployment", WORKER),
        ("Pod", f"{FULLNAME}-test"),
        ("PodDisruptionBudget", WORKER),
        ("Service", MASTER),
        ("ServiceAccount", FULLNAME),
    ]
    master, worker = find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)
    assert master["spec"]["replicas"] == 1
    assert master["spec"]["strategy"] == {"type": "Recreate"}
    assert worker["spec"]["replicas"] == 2

    m = container(master)
    assert m["image"] == "sagemaker-loadtest:0.1.0"
    assert "command" not in m  # the image's entrypoint runs locust with the bundled locustfile
    assert m["args"] == ["--enable-rebalancing"]
    menv = env(m)
    assert (menv["LOCUST_METRICS_HOST"], menv["LOCUST_METRICS_PORT"]) == (
        "0.0.0.0",
        "9646",
    )  # the exporter, for Prometheus
    assert "LOCUST_CLOUDWATCH" not in menv
    assert menv["LOCUST_MODE_MASTER"] == "true"
    assert (menv["LOCUST_MASTER_BIND_PORT"], menv["LOCUST_WEB_PORT"]) == ("5557", "8089")
    assert (menv["LOCUST_USERS"], menv["LOCUST_SPAWN_RATE"]) == ("10", "1")
    assert menv["LOCUST_STOP_TIMEOUT"] == "10"  # requests in flight at the stop complete and are counted
    assert (menv["LOCUST_ENDPOINT_NAME"], menv["LOCUST_REGION"], menv["AWS_REGION"]) == (
        "my-endpoint",
        "us-east-1",
        "us-east-1",
    )
    assert (
        menv["LOCUST_PAYLOAD"] == "/opt/smload/payloads/small.json"
    )  # an example of the image (--payload is required)
    assert "LOCUST_CONTENT_TYPE" not in menv  # the load generator takes it from the file's extension
    # Web UI mode: the test starts from the UI or `smload k8s run`, not when N workers are there.
    for headless_only in (
        "LOCUST_EXPECT_WORKERS",
        "LOCUST_HEADLESS",
        "LOCUST_RUN_TIME",
        "LOCUST_HTML",
        "LOCUST_REPORT",
    ):
        assert headless_only not in menv
    assert {p["name"]: p["containerPort"] for p in m["ports"]} == {
        "web": 8089,
        "master": 5557,
        "metrics": 9646,
    }
    assert m["readinessProbe"]["httpGet"] == {"path": "/", "port": "web"}
    assert m["livenessProbe"]["httpGet"] == {"path": "/", "port": "web"}

    w = container(worker)
    assert "args" not in w and "ports" not in w
    # A worker needs only the master's address: the master sends it the test's options.
    assert env(w) == {
        "LOCUST_MODE_WORKER": "true",
        "LOCUST_MASTER_NODE_HOST": MASTER,
        "LOCUST_MASTER_NODE_PORT": "5557",
        "AWS_REGION": "us-east-1",
    }
    assert w["resources"]["limits"]["cpu"] == "1"  # a Locust worker uses one core

    service = find(objects, "Service", MASTER)
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("web", 8089, "web"),
        ("master", 5557, "master"),
        ("metrics", 9646, "metrics"),
    ]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "master"

    annotations = master["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["prometheus.io/scrape"],
        annotations["prometheus.io/port"],
        annotations["prometheus.io/path"],
    ) == ("true", "9646", "/metrics")
    assert (
        "prometheus.io/scrape" not in worker["spec"]["template"]["metadata"]["annotations"]
    )  # workers serve no metrics
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert pod_spec(master)["serviceAccountName"] == pod_spec(worker)["serviceAccountName"] == FULLNAME
    assert "annotations" not in find(objects, "ServiceAccount")["metadata"]


def test_hpa_owns_the_worker_count(rendered):
    objects = rendered["hpa"]
    worker = find(objects, "Deployment", WORKER)
    assert (
        "replicas" not in worker["spec"]
    )  # else every helm upgrade would reset what the HPA (or kubectl scale) chose
    hpa = find(objects, "HorizontalPodAutoscaler", WORKER)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKER}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 30)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    assert container(worker)["resources"]["requests"]["cpu"]  # utilization is relative to the request


def test_job_mode(rendered):
    objects = rendered["job"]
    assert kinds(objects) == [
        ("Job", MASTER),
        ("Job", WORKER),
        ("Service", MASTER),
        ("ServiceAccount", FULLNAME),
    ]
    master, worker = find(objects, "Job", MASTER), find(objects, "Job", WORKER)
    assert master["spec"]["backoffLimit"] == 0
    assert pod_spec(master)["restartPolicy"] == "Never"
    m = container(master)
    menv = env(m)
    assert menv["LOCUST_HEADLESS"] == "true"
    assert menv["LOCUST_EXPECT_WORKERS"] == "4"
    assert menv["LOCUST_EXPECT_WORKERS_MAX_WAIT"] == "300"
    assert (menv["LOCUST_RUN_TIME"], menv["LOCUST_USERS"], menv["LOCUST_SPAWN_RATE"]) == ("10m", "200", "20")
    assert menv["LOCUST_REPORT"] == "/var/lib/smload"  # smload's report.html and report.json
    assert (menv["LOCUST_HTML"], menv["LOCUST_CSV"]) == (
        "/var/lib/smload/locust.html",
        "/var/lib/smload/locust",
    )
    assert menv["LOCUST_CHECK"] == "p95 < 250ms"
    assert m["args"] == ["--enable-rebalancing", "--json-file", "/var/lib/smload/locust"]  # Locust adds .json
    assert "livenessProbe" not in m and m["readinessProbe"]["tcpSocket"] == {"port": "master"}
    assert "web" not in {p["name"] for p in m["ports"]}
    volumes = {v["name"]: v for v in pod_spec(master)["volumes"]}
    assert volumes["reports"] == {"name": "reports", "emptyDir": {}}

    assert (worker["spec"]["parallelism"], worker["spec"]["completions"]) == (4, 4)
    assert pod_spec(worker)["restartPolicy"] == "OnFailure"
    assert worker["spec"]["backoffLimit"] == 6
    assert env(container(worker))["LOCUST_MASTER_NODE_HOST"] == MASTER
    assert [p["name"] for p in find(objects, "Service")["spec"]["ports"]] == ["master", "metrics"]


def test_job_mode_keeps_reports_in_a_claim(rendered):
    objects = rendered["job-persistence"]
    claim = find(objects, "PersistentVolumeClaim", f"{FULLNAME}-reports")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "gp3",
        "resources": {"requests": {"storage": "1Gi"}},
    }
    master = find(objects, "Job", MASTER)
    volumes = {v["name"]: v for v in pod_spec(master)["volumes"]}
    assert volumes["reports"]["persistentVolumeClaim"] == {"claimName": f"{FULLNAME}-reports"}
    for job in (master, find(objects, "Job", WORKER)):
        assert (job["spec"]["ttlSecondsAfterFinished"], job["spec"]["activeDeadlineSeconds"]) == (3600, 1800)
    assert "reports" not in {v["name"] for v in pod_spec(find(objects, "Job", WORKER))["volumes"]}


def test_service_monitor(rendered):
    monitor = find(rendered["servicemonitor"], "ServiceMonitor", MASTER)
    service = find(rendered["servicemonitor"], "Service", MASTER)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "master"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert set(monitor["spec"]) == {
        "selector",
        "namespaceSelector",
        "endpoints",
    }  # no schema for the CRD: no stray fields either


def test_irsa_and_pod_identity(rendered):
    account = find(rendered["irsa"], "ServiceAccount", FULLNAME)
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    # Pod Identity: an association (made outside the chart) names the ServiceAccount; no annotation.
    account = find(rendered["pod-identity"], "ServiceAccount", "loadtest-runner")
    assert "annotations" not in account["metadata"]
    for workload in (
        find(rendered["pod-identity"], "Deployment", MASTER),
        find(rendered["pod-identity"], "Deployment", WORKER),
    ):
        assert pod_spec(workload)["serviceAccountName"] == "loadtest-runner"


def test_existing_secret(rendered):
    objects = rendered["existing-secret"]
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]
    for workload in (find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)):
        assert container(workload)["envFrom"] == [{"secretRef": {"name": "aws-credentials"}}]
        assert pod_spec(workload)["serviceAccountName"] == "default"


@pytest.mark.parametrize(
    "case, configmap",
    [("locustfile-configmap", "my-locustfile"), ("locustfile-content", f"{FULLNAME}-locustfile")],
)
def test_custom_locustfile_is_on_every_pod(rendered, case, configmap):
    objects = rendered[case]
    for workload in (find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)):
        c = container(workload)
        assert env(c)["LOCUST_LOCUSTFILE"] == "/mnt/locust/locustfile.py"
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/mnt/locust")
        volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"] == {"name": configmap}
        assert mount["readOnly"] is True
    if case == "locustfile-content":
        assert (
            find(objects, "ConfigMap", configmap)["data"]["locustfile.py"]
            == MATRIX[case]["locustfile"]["content"]
        )


def test_payloads_are_on_every_pod(rendered):
    objects = rendered["payload-files"]
    configmap = find(objects, "ConfigMap", f"{FULLNAME}-payloads")
    assert configmap["data"] == {"request.json": '{"inputs": "hello"}'}
    assert configmap["binaryData"] == {"cat.jpg": "/9j/4AAQSkZJRg=="}
    master, worker = find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)
    assert env(container(master))["LOCUST_PAYLOAD"] == "/mnt/payloads"
    assert env(container(master))["LOCUST_CONTENT_TYPE"] == "application/x-image"
    for workload in (master, worker):
        mount = next(m for m in container(workload)["volumeMounts"] if m["mountPath"] == "/mnt/payloads")
        assert next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])["configMap"] == {
            "name": configmap["metadata"]["name"]
        }

    menv = env(container(find(rendered["payload-configmap"], "Deployment", MASTER)))
    assert (menv["LOCUST_PAYLOAD"], menv["LOCUST_PAYLOAD_ORDER"], menv["LOCUST_PAYLOAD_SEED"]) == (
        "/mnt/payloads/bodies.jsonl",
        "round-robin",
        "42",
    )
    worker = find(rendered["payload-configmap"], "Deployment", WORKER)
    assert {"name": "payloads", "configMap": {"name": "my-payloads"}} in pod_spec(worker)["volumes"]

    master = find(rendered["payload-example"], "Deployment", MASTER)
    assert env(container(master))["LOCUST_PAYLOAD"] == "/opt/smload/payloads/rows.csv"
    assert env(container(master))["LOCUST_CONTENT_TYPE"] == "text/csv"
    assert "/mnt/payloads" not in {m["mountPath"] for m in container(master)["volumeMounts"]}


def test_llm_files_are_on_every_pod_and_replace_the_payload(rendered):
    objects = rendered["llm"]
    configmap = find(objects, "ConfigMap", f"{FULLNAME}-llm")
    assert configmap["data"] == {"tokenizer.json": "{}"}
    master, worker = find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)
    menv = env(container(master))
    assert (menv["LOCUST_API"], menv["LOCUST_PROMPT_TOKENS"], menv["LOCUST_OUTPUT_TOKENS"]) == (
        "openai",
        "normal:mean=256,sd=64",
        "128",
    )
    assert (menv["LOCUST_GOODPUT"], menv["LOCUST_TOKENIZER"]) == (
        "ttft<500ms,tpot<50ms",
        "/mnt/llm/tokenizer.json",
    )
    assert "LOCUST_PAYLOAD" not in menv  # synthetic prompts: the load generator refuses --payload beside them
    for workload in (master, worker):  # a file an option names must be on every worker too
        assert {"name": "llm", "configMap": {"name": configmap["metadata"]["name"]}} in pod_spec(workload)[
            "volumes"
        ]
        mount = next(m for m in container(workload)["volumeMounts"] if m["mountPath"] == "/mnt/llm")
        assert mount == {"name": "llm", "mountPath": "/mnt/llm", "readOnly": True}
    assert "/mnt/payloads" not in {m["mountPath"] for m in container(master)["volumeMounts"]}

    objects = rendered["llm-dataset"]
    assert not [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-llm")]
    menv = env(container(find(objects, "Job", MASTER)))
    assert (menv["LOCUST_API"], menv["LOCUST_DATASET"], menv["LOCUST_REQUEST_FORMAT"]) == (
        "stream",
        "/mnt/llm/sharegpt.jsonl",
        "tgi",
    )
    assert "LOCUST_PAYLOAD" not in menv and "LOCUST_PROMPT_TOKENS" not in menv
    for workload in (find(objects, "Job", MASTER), find(objects, "Job", WORKER)):
        assert {"name": "llm", "configMap": {"name": "chat-data"}} in pod_spec(workload)["volumes"]

    # LLM options through `options` alone replace the payload too; LLM bodies from --payload keep it
    menv = env(
        container(find(render({"options": {"api": "openai", "prompt-tokens": "64"}}), "Deployment", MASTER))
    )
    assert menv["LOCUST_PROMPT_TOKENS"] == "64" and "LOCUST_PAYLOAD" not in menv
    menv = env(container(find(render({"llm": {"api": "stream"}}), "Deployment", MASTER)))
    assert menv["LOCUST_API"] == "stream" and menv["LOCUST_PAYLOAD"] == "/opt/smload/payloads/small.json"


def test_pods_roll_when_what_they_mount_changes():
    def checksums(values):
        objects = render(values)
        return [
            find(objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
            for name in (MASTER, WORKER)
        ]

    before = checksums({"payload": {"files": {"a.json": "{}"}}, "locustfile": {"content": "v1"}})
    payload_changed = checksums(
        {"payload": {"files": {"a.json": '{"x": 1}'}}, "locustfile": {"content": "v1"}}
    )
    locustfile_changed = checksums({"payload": {"files": {"a.json": "{}"}}, "locustfile": {"content": "v2"}})
    for role in (0, 1):
        assert payload_changed[role]["checksum/payloads"] != before[role]["checksum/payloads"]
        assert payload_changed[role]["checksum/locustfile"] == before[role]["checksum/locustfile"]
        assert locustfile_changed[role]["checksum/locustfile"] != before[role]["checksum/locustfile"]
        assert locustfile_changed[role]["checksum/payloads"] == before[role]["checksum/payloads"]
    llm = {"llm": {"api": "openai", "dataset": "chat.jsonl", "files": {"chat.jsonl": "{}"}}}
    before = checksums(llm)
    after = checksums({"llm": {**llm["llm"], "files": {"chat.jsonl": "[]"}}})
    for role in (0, 1):
        assert after[role]["checksum/llm"] != before[role]["checksum/llm"]
        assert after[role]["checksum/payloads"] == before[role]["checksum/payloads"]


def test_workers_restart_with_the_master():
    """A restarted master ignores the old workers' heartbeats (locust/runners.py: "unknown worker") until
    they give up after 60 s; so a change to the master's pod (test settings) restarts the workers too."""

    def annotations(values):
        objects = render(values)
        return [
            find(objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
            for name in (MASTER, WORKER)
        ]

    _, worker = annotations({})
    _, worker_after = annotations({"locust": {"users": 50}})
    assert worker_after["checksum/master"] != worker["checksum/master"]
    _, worker_scaled = annotations({"worker": {"replicas": 7}})
    assert worker_scaled["checksum/master"] == worker["checksum/master"]  # scaling the workers touches no one


def test_network_policy(rendered):
    objects = rendered["networkpolicy"]
    master_policy = find(objects, "NetworkPolicy", MASTER)
    worker_labels = find(objects, "Deployment", WORKER)["spec"]["template"]["metadata"]["labels"]
    workers, metrics, web = master_policy["spec"]["ingress"]
    assert workers["ports"] == [{"port": "master", "protocol": "TCP"}]
    (worker_peer,) = workers["from"]
    assert worker_peer["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert worker_peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert metrics == {
        "from": [
            {
                "namespaceSelector": {},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ],
        "ports": [{"port": "metrics", "protocol": "TCP"}],
    }
    assert web == {
        "from": [{"podSelector": {"matchLabels": {"app": "ingress"}}}],
        "ports": [{"port": "web", "protocol": "TCP"}],
    }
    assert master_policy["spec"]["policyTypes"] == ["Ingress"]  # egress stays open: workers reach SageMaker
    worker_policy = find(objects, "NetworkPolicy", WORKER)
    assert worker_policy["spec"]["ingress"] == [] and worker_policy["spec"]["policyTypes"] == ["Ingress"]
    # The ports the policy names exist on the master container.
    assert {"master", "metrics", "web"} <= {
        p["name"] for p in container(find(objects, "Deployment", MASTER))["ports"]
    }


def test_ingress(rendered):
    ingress = find(rendered["ingress"], "Ingress", MASTER)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "loadtest.example.com"
    assert rule["http"]["paths"] == [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": MASTER, "port": {"name": "web"}}}}
    ]
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-secret": "loadtest-htpasswd",
        "nginx.ingress.kubernetes.io/auth-realm": "sagemaker-loadtest",
    }
    assert ingress["spec"]["tls"] == [{"hosts": ["loadtest.example.com"], "secretName": "loadtest-tls"}]


def test_web_login(rendered):
    objects = rendered["web-login"]
    assert env(container(find(objects, "Deployment", MASTER)))["LOCUST_WEB_LOGIN"] == "true"
    assert (
        "/login" in find(objects, "Pod")["spec"]["containers"][0]["args"][0]
    )  # the helm test checks the login page
    assert find(objects, "PodDisruptionBudget", MASTER)["spec"]["maxUnavailable"] == 0


def test_rbac_is_minimal(rendered):
    objects = rendered["rbac"]
    role = find(objects, "Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert rules[(("apps",), ("deployments/scale",))]["verbs"] == ["get", "patch"]
    proxy = rules[(("",), ("services/proxy",))]
    assert proxy["verbs"] == ["get", "create"] and proxy["resourceNames"] == [MASTER, f"{MASTER}:web"]
    for rule in role["rules"]:
        assert not {"delete", "update", "*", "deletecollection"} & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"]
    binding = find(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == MATRIX["rbac"]["rbac"]["subjects"]


def test_everything(rendered):
    objects = rendered["everything"]
    master, worker = find(objects, "Deployment", MASTER), find(objects, "Deployment", WORKER)
    m, w = container(master), container(worker)
    assert m["image"] == w["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-loadtest:1.2.3"
    menv = env(m)
    assert menv["LOCUST_ENDPOINT_URL"] == "https://runtime.sagemaker.us-east-1.amazonaws.com"
    assert (menv["LOCUST_TARGET_VARIANT"], menv["LOCUST_CUSTOM_ATTRIBUTES"], menv["LOCUST_ACCEPT"]) == (
        "variant-b",
        "a=b",
        "application/json",
    )
    assert (menv["LOCUST_REQUEST_TIMEOUT"], menv["LOCUST_CONNECT_TIMEOUT"], menv["LOCUST_CLIENT"]) == (
        "30",
        "2.5",
        "boto3",
    )
    assert (menv["LOCUST_STREAM"], menv["LOCUST_ROLE_ARN"], menv["LOCUST_STOP_TIMEOUT"]) == (
        "true",
        ROLE_ARN,
        "5",
    )
    assert (menv["LOCUST_CLOUDWATCH"], menv["LOCUST_CLOUDWATCH_INTERVAL"]) == ("true", "30")
    assert menv["LOCUST_RUN_TIME"] == "30m" and menv["TZ"] == "UTC"
    assert menv["LOCUST_CHECK"] == "p99 < 1s; error_rate < 1%"
    assert m["args"][-2:] == ["--loglevel", "DEBUG"]
    assert w["args"] == ["--loglevel", "DEBUG"]
    assert pod_spec(master)["nodeSelector"] == {"pool": "loadtest"} and "nodeSelector" not in pod_spec(worker)
    assert pod_spec(master)["priorityClassName"] == "high"
    assert pod_spec(master)["tolerations"][0]["key"] == "loadtest"
    assert "podAntiAffinity" in pod_spec(worker)["affinity"] and "affinity" not in pod_spec(master)
    assert pod_spec(worker)["imagePullSecrets"] == [{"name": "regcred"}]
    assert worker["spec"]["replicas"] == 8
    service = find(objects, "Service", MASTER)
    assert service["spec"]["type"] == "LoadBalancer" and service["metadata"]["annotations"]


def test_image_digest_wins_over_tag():
    digest = "sha256:" + "ab" * 32
    objects = render({"image": {"tag": "1.0", "digest": digest}})
    assert container(find(objects, "Deployment", WORKER))["image"] == f"sagemaker-loadtest@{digest}"


def test_ports_follow_values():
    """The numbers are values (the container test maps them onto free ports); names stay the same."""
    objects = render({"ports": {"web": 18089, "master": 15557, "metrics": 19646}})
    m = container(find(objects, "Deployment", MASTER))
    assert {p["name"]: p["containerPort"] for p in m["ports"]} == {
        "web": 18089,
        "master": 15557,
        "metrics": 19646,
    }
    assert (env(m)["LOCUST_WEB_PORT"], env(m)["LOCUST_MASTER_BIND_PORT"]) == ("18089", "15557")
    assert env(m)["LOCUST_METRICS_PORT"] == "19646"
    assert env(container(find(objects, "Deployment", WORKER)))["LOCUST_MASTER_NODE_PORT"] == "15557"
    assert [p["port"] for p in find(objects, "Service")["spec"]["ports"]] == [18089, 15557, 19646]


def test_notes_tell_how_to_use_it():
    text = notes({})
    assert f"kubectl -n {NAMESPACE} port-forward svc/{MASTER} 8089:8089" in text
    assert f"kubectl -n {NAMESPACE} scale deployment/{WORKER} --replicas=20" in text
    assert "smload k8s run" in text and "metrics.grafanaDashboards.enabled=true" in text
    text = notes({"mode": "job", "locust": {"runTime": "5m"}})
    assert f"kubectl -n {NAMESPACE} logs job/{MASTER}" in text
    assert "reports.persistence.enabled=true" in text and "port-forward" not in text
    text = notes({"mode": "job", "locust": {"runTime": "5m"}, "reports": {"persistence": {"enabled": True}}})
    assert f"cp {RELEASE}-reports:/var/lib/smload ./reports" in text
    assert f"kubectl -n {NAMESPACE} get hpa {WORKER}" in notes({"worker": {"autoscaling": {"enabled": True}}})


def test_kubernetes_older_than_1_29_is_refused():
    """Chart.yaml's kubeVersion: the oldest version the objects are validated against."""
    result = template({}, "--kube-version", "1.28.0", check=False)
    assert result.returncode != 0 and "chart requires kubeVersion: >=1.29.0-0" in result.stderr
