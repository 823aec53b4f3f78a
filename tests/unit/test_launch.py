"""``smload run`` and ``smload calibrate``: the Locust command lines they build (they only build
them and wait; the commands themselves run in tests/integration/test_wheel.py)."""

import sys

from smload import launch


def test_calibrate_adds_the_bundled_locustfile_headless_calibrate_and_one_worker_per_cpu(monkeypatch):
    monkeypatch.delenv("LOCUST_LOCUSTFILE", raising=False)
    monkeypatch.delenv("LOCUST_PROCESSES", raising=False)
    cmd = launch.calibrate_command(["--endpoint-name", "ep", "--slo", "p99<300ms"])
    locustfile = launch.bundled_locustfile()
    assert locustfile.is_file() and locustfile.name == "locustfile.py" and locustfile.parent.name == "smload"
    assert cmd == [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--calibrate",
        "--processes",
        "-1",
        "--endpoint-name",
        "ep",
        "--slo",
        "p99<300ms",
    ]


def test_calibrate_keeps_the_users_locustfile_and_process_layout(monkeypatch):
    monkeypatch.delenv("LOCUST_PROCESSES", raising=False)
    cmd = launch.calibrate_command(["-f", "mine.py", "--processes", "3"])
    assert cmd[3:] == ["--headless", "--calibrate", "-f", "mine.py", "--processes", "3"]
    assert "--processes" not in launch.calibrate_command(["--master", "--expect-workers", "4"])
    monkeypatch.setenv("LOCUST_LOCUSTFILE", "/opt/smload/locustfile.py")
    assert "-f" not in launch.calibrate_command(["--worker"])


def test_run_keeps_the_web_ui_on_loopback_unless_told(monkeypatch):
    monkeypatch.delenv("LOCUST_LOCUSTFILE", raising=False)
    monkeypatch.delenv("LOCUST_WEB_HOST", raising=False)
    cmd = launch.run_command(["--endpoint-name", "ep"])
    assert cmd[3:] == [
        "-f",
        str(launch.bundled_locustfile()),
        "--web-host",
        "127.0.0.1",
        "--endpoint-name",
        "ep",
    ]
    assert "127.0.0.1" not in launch.run_command(["--web-host", "0.0.0.0"])[:-1]
    monkeypatch.setenv("LOCUST_WEB_HOST", "0.0.0.0")
    assert "--web-host" not in launch.run_command([])
