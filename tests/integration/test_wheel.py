"""The tool from a plain ``pip install`` of its wheel, in a fresh virtual environment outside the
checkout: ``smload emulator``, ``smload run`` and ``smload calibrate`` against each other, with the
locustfile and everything it needs coming from the package itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv

import pytest
from testkit.support import REPO, Emulator, answers, aws_env, free_port, wait_until


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv with the wheel that ``pip wheel`` builds from this checkout (dependencies from the
    package index, or pip's cache)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(root / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("sagemaker_loadtest-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    result = subprocess.run(
        [bin_dir / "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"bin": bin_dir, "cwd": root}


def test_run_calibrate_and_emulator_from_the_wheel(installed, procs, tmp_path):
    bin_dir, cwd = installed["bin"], installed["cwd"]
    env = aws_env()
    where = subprocess.run(
        [
            bin_dir / "python",
            "-c",
            "import smload, smload.launch; print(smload.__file__);print(smload.launch.bundled_locustfile())",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=True,
    ).stdout.split()
    assert all(str(installed["cwd"] / "venv") in path for path in where), where  # not this checkout

    port = free_port()
    proc = procs.start(
        "emulator",
        [
            bin_dir / "smload",
            "emulator",
            "--port",
            str(port),
            "--endpoint",
            "ep",
            "--variant",
            "name=AllTraffic,instances=1,concurrency=4,latency_ms=20",
        ],
        cwd=cwd,
    )
    emulator = Emulator(proc, port)
    wait_until(lambda: answers(f"{emulator.url}/ping"), 30, "the wheel's emulator to answer")
    body = tmp_path / "body.json"
    body.write_text('{"inputs": [1, 2, 3]}')
    common = [
        "--endpoint-name",
        "ep",
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--payload",
        str(body),
        "--metrics-port",
        "0",
    ]

    run = subprocess.run(
        [
            bin_dir / "smload",
            "run",
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "3s",
            "--stop-timeout",
            "5",
            "--check",
            "error_rate<1%",
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    served = emulator.stats()["endpoints"]["ep"]["requests"]
    row = re.search(
        r"^ep/AllTraffic\s+(\d+)\s+0\s", run.stdout, re.MULTILINE
    )  # the summary's row: requests, failures
    assert row and int(row.group(1)) == served > 50, run.stdout[-2000:]

    out = tmp_path / "calibration"
    calibrate = subprocess.run(
        [
            bin_dir / "smload",
            "calibrate",
            "--instances",
            "1",
            "--max-steps",
            "2",
            "--step-warmup",
            "1",
            "--step-time",
            "2",
            "--processes",
            "1",
            "--output",
            str(out),
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=180,
    )
    assert calibrate.returncode in (0, 3), calibrate.stderr[-3000:]
    result = json.loads((out / "calibration.json").read_text())
    assert len(result["steps"]) == 2 and result["steps"][0]["requests"] > 0
    assert (out / "calibration.html").is_file()
