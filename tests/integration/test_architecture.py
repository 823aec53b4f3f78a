"""The house's import contracts (pyproject.toml, checked by ``make lint``) hold on the package as it
is, and each one catches a deliberate violation: import-linter runs on the wheel's files with one
bad module per contract added."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from testkit.support import REPO

BIN = Path(sys.executable).parent
VIOLATIONS = {
    "smload/invoke/bad_layers.py": "import smload.measure.store\n",  # siblings that must not know each other
    "smload/results/bad_upwards.py": "import smload.run.testrun\n",  # a lower layer importing a higher one
    "smload/flags.py": None,  # the ground floor importing the house (appended below)
    "smload/run/bad_exporter.py": "import smload.exporter.server\n",
    "smload/load/bad_measure.py": "import smload.measure.store\n",  # load counts through the TestRun's callback
    "smload/exporter/bad_core.py": "import smload.run.testrun\n",
    "smload/emulator/bad_gevent.py": "import gevent\n",
    "smload/k8s/bad_locust.py": "import locust\n",
    "smload/measure/bad_a.py": "from . import bad_b\n",
    "smload/measure/bad_b.py": "from . import bad_a\n",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lint")
    subprocess.run(
        [BIN / "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", root / "dist", REPO],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("*.whl")
    subprocess.run(
        [BIN / "pip", "install", "--quiet", "--no-deps", "--target", root / "site", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root / "site"


def lint(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "lint-imports", "--no-cache", REPO / "pyproject.toml"],
        cwd=site.parent,
        env={"PYTHONPATH": str(site), "PATH": str(BIN)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def contract_names() -> list[str]:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return [" ".join(c["name"].split()) for c in contracts]


def verdicts(output: str) -> dict[str, str]:
    """{contract name: KEPT or BROKEN} from lint-imports' report (which wraps long names)."""
    flat = " ".join(output.split())
    return {
        name: ("BROKEN" if f"{name} BROKEN" in flat else "KEPT" if f"{name} KEPT" in flat else "?")
        for name in contract_names()
    }


def test_the_house_keeps_every_contract(site):
    result = lint(site)
    assert result.returncode == 0, result.stdout[-3000:]
    assert set(verdicts(result.stdout).values()) == {"KEPT"}


def test_each_contract_catches_a_violation(site, tmp_path):
    site = Path(shutil.copytree(site, tmp_path / "site"))
    for path, code in VIOLATIONS.items():
        target = site / path
        if code is None:
            target.write_text(target.read_text() + "\nimport smload.invoke.options  # noqa\n")
        else:
            target.write_text(code)
    result = lint(site)
    assert result.returncode != 0
    assert verdicts(result.stdout) == {name: "BROKEN" for name in contract_names()}, result.stdout[-5000:]
