"""The dashboards, Prometheus config and Grafana provisioning as files: importable grafana.com-style,
provisioned where docker/compose.yaml mounts them, every variable a query uses defined. (Their
queries run against a real Prometheus in tests/integration/test_exporter_prometheus.py.)"""

import json

import pytest
import yaml
from testkit.dashboards import BUILTINS, DASHBOARDS, load, panels, queries, substitute
from testkit.support import REPO

DOCKER = REPO / "docker"
BOARDS = load()


def test_the_seven_dashboards_are_there():
    assert sorted(BOARDS) == [
        "autoscaling.json",
        "endpoint.json",
        "errors.json",
        "generator.json",
        "llm.json",
        "overview.json",
        "variants.json",
    ]
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids) and all(uid.startswith("smload-") for uid in uids)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_importable_with_a_datasource_input(name):
    board = BOARDS[name]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert variables["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    assert "sagemaker-loadtest" in board["tags"] and board["title"].startswith("sagemaker-loadtest: ")
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_variable_a_query_uses_is_defined(name):
    board = BOARDS[name]
    defined = {v["name"]: "x" for v in board["templating"]["list"]} | BUILTINS
    for q in queries(name, board):
        substitute(q.expr, defined)  # raises on an unknown $variable
    assert queries(name, board)


def test_provisioning_matches_the_compose_stack():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ][0]
    assert (
        datasource["url"] == "http://prometheus:9090" and datasource["isDefault"] and "prometheus" in compose
    )
    provider = yaml.safe_load(
        (DOCKER / "grafana/provisioning/dashboards/sagemaker-loadtest.yaml").read_text()
    )["providers"][0]
    mounts = compose["grafana"]["volumes"]
    assert f"../helm/sagemaker-loadtest/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    home = compose["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/overview.json"
    config = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"locust": ["master:9646"], "emulator": ["emulator:8080"]}
    assert {"master", "emulator"} <= set(compose)
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in compose["prometheus"]["volumes"]
    assert datasource["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]


def test_dashboards_are_plain_json_files():
    for path in DASHBOARDS.glob("*.json"):
        text = path.read_text()
        assert json.loads(text)["schemaVersion"] >= 36 and text.endswith("\n")
