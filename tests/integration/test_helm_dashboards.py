"""The chart's Grafana dashboards are docker/grafana/dashboards/*.json, byte for byte.

Helm cannot read files outside a chart, so the chart carries copies (``make helm-dashboards``)
rather than a symlink: a symlink makes the chart directory unusable on its own (Helm refuses to load
a chart with a dangling link) and prints a notice on every helm command. The copies are only
acceptable because these tests fail the moment they differ from the one source.
"""

from __future__ import annotations

import json
import tarfile

from helmchart import CHART, FULLNAME, find, helm, render
from support import REPO

SOURCE = REPO / "docker" / "grafana" / "dashboards"
COPIES = CHART / "dashboards"
FIX = "run `make helm-dashboards` to copy docker/grafana/dashboards into the chart"


def source_files() -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(SOURCE.glob("*.json"))}
    assert files, f"no dashboards in {SOURCE}"
    return files


def test_copies_are_byte_identical_to_the_source():
    copies = {p.name: p.read_bytes() for p in sorted(COPIES.glob("*.json"))}
    source = source_files()
    assert sorted(copies) == sorted(source), f"the chart's dashboards {sorted(copies)} are not {sorted(source)}: {FIX}"
    for name, content in source.items():
        assert copies[name] == content, f"helm/sagemaker-loadtest/dashboards/{name} differs from docker/grafana/dashboards/{name}: {FIX}"
    assert not COPIES.is_symlink()


def test_configmap_for_the_grafana_sidecar_carries_the_source():
    objects = render({"metrics": {"grafanaDashboards": {"enabled": True, "annotations": {"grafana_folder": "Load tests"}}}})
    configmap = find(objects, "ConfigMap", f"{FULLNAME}-dashboards")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Load tests"}
    source = source_files()
    assert sorted(configmap["data"]) == sorted(source)
    for name, content in source.items():
        assert configmap["data"][name].encode() == content
        assert json.loads(content)["panels"] is not None  # a dashboard, not any JSON
    # The API server stores at most 1 MiB per ConfigMap.
    assert sum(len(v.encode()) for v in configmap["data"].values()) < 1024 * 1024


def test_packaged_chart_is_self_contained(tmp_path):
    helm("package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("sagemaker-loadtest-*.tgz")
    with tarfile.open(archive) as tar:
        packaged = {m.name.rsplit("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()
                    if m.name.startswith("sagemaker-loadtest/dashboards/")}
        assert "sagemaker-loadtest/values.schema.json" in tar.getnames()
    assert packaged == source_files()
