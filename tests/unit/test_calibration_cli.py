"""``smload calibrate``'s Locust command line (the front end only builds it and waits)."""

import sys

from smload import calibrate


def test_command_adds_the_bundled_locustfile_headless_calibrate_and_one_worker_per_cpu(monkeypatch):
    monkeypatch.delenv("LOCUST_LOCUSTFILE", raising=False)
    monkeypatch.delenv("LOCUST_PROCESSES", raising=False)
    cmd = calibrate.command(["--endpoint-name", "ep", "--slo", "p99<300ms"])
    locustfile = calibrate.bundled_locustfile()
    assert locustfile is not None and locustfile.name == "locustfile.py" and locustfile.parent.name == "locust"
    assert cmd == [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--calibrate",
                   "--processes", "-1", "--endpoint-name", "ep", "--slo", "p99<300ms"]


def test_command_keeps_the_users_locustfile_and_process_layout(monkeypatch):
    monkeypatch.delenv("LOCUST_PROCESSES", raising=False)
    cmd = calibrate.command(["-f", "mine.py", "--processes", "3"])
    assert cmd[3:] == ["--headless", "--calibrate", "-f", "mine.py", "--processes", "3"]
    assert "--processes" not in calibrate.command(["--master", "--expect-workers", "4"])
    monkeypatch.setenv("LOCUST_LOCUSTFILE", "/opt/smload/locustfile.py")
    assert "-f" not in calibrate.command(["--worker"])
