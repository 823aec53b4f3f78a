"""Bad values fail when the chart renders (so at ``helm install``), with a message that names the
value: the schema's (values.schema.json, ``additionalProperties: false`` everywhere) for what a
schema can say, the chart's own ``fail`` for the rest (mutually exclusive sources, cross-field rules)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import yaml
from testkit.helmchart import CHART, render, render_error
from testkit.support import REPO

SCHEMA_HEADER = "values don't meet the specifications of the schema"

# (values, where, what): `where` is the value's JSON pointer (Helm 4) or dotted path (Helm 3);
# `what` is the schema's complaint as Helm 4 words it, or as Helm 3 does.
SCHEMA_CASES = {
    "unknown top-level key": (
        {"replicas": 3},
        ("at ''", "(root)"),
        ("additional properties 'replicas' not allowed", "Additional property replicas is not allowed"),
    ),
    "unknown nested key": (
        {"worker": {"replica": 3}},
        ("/worker", "worker"),
        ("additional properties 'replica' not allowed", "Additional property replica is not allowed"),
    ),
    "mode not in enum": (
        {"mode": "cron"},
        ("/mode", "mode"),
        ("value must be one of 'deployment', 'job'", "must be one of the following"),
    ),
    "replicas negative": (
        {"worker": {"replicas": -1}},
        ("/worker/replicas", "worker.replicas"),
        ("minimum: got -1, want 0", "greater than or equal to 0"),
    ),
    "replicas not an integer": (
        {"worker": {"replicas": "two"}},
        ("/worker/replicas", "worker.replicas"),
        ("got string, want integer", "Expected: integer"),
    ),
    "port out of range": (
        {"ports": {"web": 70000}},
        ("/ports/web", "ports.web"),
        ("maximum: got 70,000, want 65,535", "less than or equal to 65535"),
    ),
    "job mode without a run time": (
        {"mode": "job"},
        ("/locust/runTime", "locust.runTime"),
        ("minLength: got 0, want 1", "greater than or equal to 1"),
    ),
    "run time not a timespan": (
        {"locust": {"runTime": "10 minutes"}},
        ("/locust/runTime", "locust.runTime"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "spawn rate zero": (
        {"locust": {"spawnRate": 0}},
        ("/locust/spawnRate", "locust.spawnRate"),
        ("exclusiveMinimum", "greater than 0"),
    ),
    "checks not a list": (
        {"locust": {"checks": "p95 < 250ms"}},
        ("/locust/checks", "locust.checks"),
        ("got string, want array", "Expected: array"),
    ),
    "IRSA role not an ARN": (
        {"serviceAccount": {"roleArn": "loadtest-role"}},
        ("/serviceAccount/roleArn", "serviceAccount.roleArn"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "endpoint name SageMaker rejects": (
        {"endpoint": {"name": "my_endpoint"}},
        ("/endpoint/name", "endpoint.name"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "region misspelt": (
        {"endpoint": {"region": "useast1"}},
        ("/endpoint/region", "endpoint.region"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "payload order not in enum": (
        {"payload": {"order": "sequential"}},
        ("/payload/order", "payload.order"),
        ("value must be one of '', 'random', 'round-robin'", "must be one of the following"),
    ),
    "client not in enum": (
        {"request": {"client": "curl"}},
        ("/request/client", "request.client"),
        ("value must be one of '', 'fast', 'boto3'", "must be one of the following"),
    ),
    "pull policy not in enum": (
        {"image": {"pullPolicy": "Sometimes"}},
        ("/image/pullPolicy", "image.pullPolicy"),
        ("value must be one of", "must be one of the following"),
    ),
    "resource quantity": (
        {"worker": {"resources": {"limits": {"cpu": "lots"}}}},
        ("/worker/resources/limits/cpu", "worker.resources.limits.cpu"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "CPU target above 100%": (
        {"worker": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}},
        ("/worker/autoscaling/targetCPUUtilizationPercentage", "targetCPUUtilizationPercentage"),
        ("maximum: got 150, want 100", "less than or equal to 100"),
    ),
    "scrape interval not a duration": (
        {"metrics": {"serviceMonitor": {"interval": 15}}},
        ("/metrics/serviceMonitor/interval", "metrics.serviceMonitor.interval"),
        ("got number, want string", "Expected: string"),
    ),
    "RBAC without subjects": (
        {"rbac": {"create": True}},
        ("/rbac/subjects", "rbac.subjects"),
        ("minItems: got 0, want 1", "at least 1 items"),
    ),
    "service type": (
        {"service": {"type": "Public"}},
        ("/service/type", "service.type"),
        ("value must be one of", "must be one of the following"),
    ),
    "image digest": (
        {"image": {"digest": "latest"}},
        ("/image/digest", "image.digest"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "payload file name with a slash": (
        {"payload": {"files": {"a/b.json": "{}"}}},
        ("'a/b.json'", "a/b.json"),
        ("does not match pattern", "Does not match pattern"),
    ),
    "LLM api not in enum": (
        {"llm": {"api": "chat"}},
        ("/llm/api", "llm.api"),
        ("value must be one of '', 'invoke', 'stream', 'openai'", "must be one of the following"),
    ),
    "LLM dataset as a path": (
        {"llm": {"dataset": "/data/chat.jsonl"}},
        ("/llm/dataset", "llm.dataset"),
        ("does not match pattern", "Does not match pattern"),
    ),
}


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_schema_rejects(case):
    values, where, what = SCHEMA_CASES[case]
    error = render_error(values)
    assert SCHEMA_HEADER in error, error
    assert any(w in error for w in where), f"{case}: the error does not name {where}:\n{error}"
    assert any(w in error for w in what), f"{case}: expected one of {what}:\n{error}"
    assert "Traceback" not in error and error.count("\n") < 8, error  # one clear complaint, not a wall


# Rules across fields, which the chart checks itself: the message names the values and the way out.
TEMPLATE_CASES = {
    "two payload ConfigMaps": (
        {"payload": {"files": {"a.json": "{}"}, "existingConfigMap": "mine"}},
        "set payload.files/payload.binaryFiles (a ConfigMap the chart makes) or payload.existingConfigMap, not both",
    ),
    "payload file without a ConfigMap": (
        {"payload": {"file": "bodies.jsonl"}},
        "payload.file names a file of the payload ConfigMap",
    ),
    "payload file not among the files": (
        {"payload": {"files": {"a.json": "{}"}, "file": "b.json"}},
        'payload.file: "b.json" is not one of',
    ),
    "no payload at all": ({"payload": {"example": ""}}, "the bundled locustfile needs request bodies"),
    "same payload file twice": (
        {"payload": {"files": {"a.bin": "x"}, "binaryFiles": {"a.bin": "eA=="}}},
        '"a.bin" is in both payload.files and payload.binaryFiles',
    ),
    "two locustfiles": (
        {"locustfile": {"content": "x", "existingConfigMap": "mine"}},
        "set locustfile.content or locustfile.existingConfigMap, not both",
    ),
    "no endpoint": ({"endpoint": {"name": ""}}, "endpoint.name is required with the bundled locustfile"),
    "HPA bounds reversed": (
        {"worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
        "worker.autoscaling.maxReplicas (2) must be >= worker.autoscaling.minReplicas (5)",
    ),
    "HPA in job mode": (
        {"mode": "job", "locust": {"runTime": "1m"}, "worker": {"autoscaling": {"enabled": True}}},
        "an HPA cannot scale Job workers",
    ),
    "job without workers": (
        {"mode": "job", "locust": {"runTime": "1m"}, "worker": {"replicas": 0}},
        "worker.replicas must be >= 1 in job mode",
    ),
    "ingress in job mode": (
        {"mode": "job", "locust": {"runTime": "1m"}, "ingress": {"enabled": True}},
        "job mode runs headless, there is no web UI",
    ),
    "LLM prompts and payload files": (
        {"llm": {"promptTokens": 256}, "payload": {"files": {"a.json": "{}"}}},
        "the prompts come from llm.promptTokens / llm.dataset (no --payload then)",
    ),
    "two LLM ConfigMaps": (
        {"llm": {"files": {"t.json": "{}"}, "existingConfigMap": "mine"}},
        "set llm.files (a ConfigMap the chart makes) or llm.existingConfigMap, not both",
    ),
    "LLM file without a ConfigMap": (
        {"llm": {"tokenizer": "tokenizer.json"}},
        "llm.tokenizer names a file of the LLM ConfigMap",
    ),
    "LLM file not among the files": (
        {"llm": {"dataset": "b.jsonl", "files": {"a.jsonl": "{}"}}},
        'llm.dataset: "b.jsonl" is not one of llm.files',
    ),
    "dataset and synthetic prompts": (
        {"llm": {"dataset": "a.jsonl", "promptTokens": 64, "files": {"a.jsonl": "{}"}}},
        "set llm.dataset (its prompts) or llm.promptTokens (synthetic prompts), not both",
    ),
}


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_chart_rejects(case):
    values, message = TEMPLATE_CASES[case]
    error = render_error(values)
    assert message in error, error


def test_no_endpoint_is_fine_with_a_custom_locustfile():
    objects = render({"endpoint": {"name": ""}, "locustfile": {"existingConfigMap": "mine"}})
    assert any(o["kind"] == "Deployment" for o in objects)


def test_values_reference_is_up_to_date_and_complete():
    """helm/sagemaker-loadtest/README.md's table is generated from the schema (make helm-docs)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "helm_values_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location(
        "helm_values_table", REPO / "scripts" / "helm_values_table.py"
    )
    helm_values_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm_values_table)

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = helm_values_table.rows(schema, values)
    assert [key for key, _, _, description in rows if not description] == []
    documented = {key for key, *_ in rows}

    def leaves(node, path):
        if isinstance(node, dict) and node and ".".join(path) not in documented:
            for key, child in node.items():
                yield from leaves(child, [*path, key])
        else:
            yield ".".join(path)

    assert set(leaves(values, [])) <= documented
