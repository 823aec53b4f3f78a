"""The image itself: metadata, contents, entrypoint dispatch, non-root + read-only, clean SIGTERM."""

import json
import re

import pytest
from testkit.docker_support import TEST_AWS_ENV, private_aws_dir
from testkit.support import answers, free_port, http_get, wait_until

CUSTOM_LOCUSTFILE = """\
from locust import User, task


class CustomMountedUser(User):
    @task
    def nothing(self):
        pass
"""


def locust_stats(web_port: int) -> dict:
    status, body = http_get(f"http://127.0.0.1:{web_port}/stats/requests")
    assert status == 200, body
    return json.loads(body)


def test_image_metadata(docker, image):
    config = docker.inspect(image)["Config"]
    assert config["User"] == "10001:10001"
    assert set(config["ExposedPorts"]) == {"8089/tcp", "5557/tcp", "9646/tcp", "8080/tcp"}
    assert set(config["Volumes"]) == {"/var/lib/smload"}
    assert config["WorkingDir"] == "/var/lib/smload"
    assert config["Entrypoint"] == ["dumb-init", "--", "/opt/smload/entrypoint.sh"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["LOCUST_LOCUSTFILE"] == "/opt/smload/locustfile.py"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["LOCUST_METRICS_HOST"] == "0.0.0.0"  # reachable through -p, like the web UI
    labels = config["Labels"]
    for key in ("title", "description", "source", "licenses", "version", "revision", "created"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"OCI label {key} missing"


def test_image_contents(containers):
    """The documented paths exist; nothing else from the build context or the build stage came along."""
    script = (
        "set -e; test -f /opt/smload/locustfile.py; test -f /opt/smload/emulator/ab-test.yaml;"
        " ls /opt/smload/payloads | grep -q .; test -d /mnt/payloads; test -d /mnt/locust;"
        " for p in /src /wheels /opt/smload/venv/bin/pip /opt/smload/tests /opt/smload/.git; do"
        "   if [ -e $p ]; then echo unexpected $p; exit 1; fi; done;"
        " find / -xdev \\( -name .venv -o -name .git -o -name .tools -o -name .aws -o -name conftest.py \\) -print | grep . && exit 1;"
        " echo contents-ok"
    )
    code, out = containers.run("contents", "sh", "-c", script)
    assert code == 0 and "contents-ok" in out, out


def test_runs_as_uid_10001_with_a_read_only_root(containers):
    script = (
        "id -u; id -g;"
        " touch /opt/smload/x 2>/dev/null && echo root-writable;"
        " touch /tmp/x && echo tmp-writable;"
        " touch /var/lib/smload/x && echo volume-writable"
    )
    code, out = containers.run("readonly", "sh", "-c", script)
    assert code == 0, out
    assert out.split()[:2] == ["10001", "10001"]
    assert "root-writable" not in out
    assert "tmp-writable" in out and "volume-writable" in out


def test_any_uid_can_run_it(containers):
    """compose runs the containers as the host user when it mounts ~/.aws (files private to that user)."""
    code, out = containers.run("anyuid", "--version", user="4242:4242")
    assert code == 0 and out.startswith("locust "), out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--version"], r"^locust 2\.\d+"),
        (["locust", "--version"], r"^locust 2\.\d+"),
        (["smload", "--version"], r"^smload \d+\.\d+"),
        (["emulator", "--help"], r"usage: .*emulator"),
        (["calibrate", "--help"], r"usage: .*calibrate"),
        (["k8s", "--help"], r"usage: .*k8s"),
    ],
)
def test_entrypoint_dispatch(containers, args, expected):
    code, out = containers.run("dispatch", *args)
    assert code == 0, out
    assert re.search(expected, out, re.MULTILINE), out


def test_bundled_locustfile_is_the_default_and_a_mounted_one_overrides_it(containers, tmp_path):
    custom = tmp_path / "locust"
    custom.mkdir()
    (custom / "locustfile.py").write_text(CUSTOM_LOCUSTFILE)
    custom.chmod(0o755)
    (custom / "locustfile.py").chmod(0o644)
    mount = f"{custom}:/mnt/locust:ro"

    code, bundled = containers.run("bundled", "--list", env=TEST_AWS_ENV)
    assert code == 0, bundled
    assert "InvokeEndpointUser" in bundled and "CustomMountedUser" not in bundled

    code, by_flag = containers.run("by-flag", "-f", "/mnt/locust/locustfile.py", "--list", volumes=(mount,))
    assert code == 0 and "CustomMountedUser" in by_flag, by_flag

    code, by_env = containers.run(
        "by-env", "--list", volumes=(mount,), env={"LOCUST_LOCUSTFILE": "/mnt/locust/locustfile.py"}
    )
    assert code == 0 and "CustomMountedUser" in by_env, by_env


def test_sigterm_stops_every_role_cleanly(containers):
    """``docker stop`` sends SIGTERM to PID 1 (dumb-init), which forwards it: each process stops
    by itself with exit code 0 long before docker's SIGKILL (exit code 137)."""
    web_port, master_port, metrics_port, emulator_port = free_port(), free_port(), free_port(), free_port()
    emulator = containers.start(
        "emulator",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        emulator_port,
        "--config",
        "/opt/smload/emulator/ab-test.yaml",
    )
    master = containers.start(
        "master",
        "--master",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        web_port,
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        master_port,
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        metrics_port,
        "--endpoint-name",
        "ab-test",
        "--endpoint-url",
        f"http://127.0.0.1:{emulator_port}",
        "--payload",
        "/opt/smload/payloads/small.json",
        env=TEST_AWS_ENV,
    )
    worker = containers.start(
        "worker", "--worker", "--master-host", "127.0.0.1", "--master-port", master_port, env=TEST_AWS_ENV
    )
    wait_until(lambda: answers(f"http://127.0.0.1:{emulator_port}/ping"), 60, "the emulator container")
    wait_until(lambda: answers(f"http://127.0.0.1:{web_port}/"), 60, "the master's web UI")
    wait_until(lambda: locust_stats(web_port)["workers"], 60, "the worker to connect")

    for container in (worker, master, emulator):
        assert container.top_users() == {"10001"}
        code, took = container.stop(timeout=30)
        assert code == 0, f"{container.name} exited {code} after SIGTERM:\n{container.logs()}"
        assert took < 15, f"{container.name} took {took:.1f} s to stop"


def test_host_aws_config_through_a_private_writable_copy(containers, tmp_path):
    """~/.aws mounted read-only at /mnt/aws: the profile's credentials and region resolve, and the
    SSO cache is writable (botocore writes a refreshed SSO token there) without touching the host."""
    aws = private_aws_dir(tmp_path, owner=4242)
    script = (
        "python -c \"import boto3; s = boto3.Session(profile_name='load');"
        " print('profile', s.get_credentials().access_key, s.region_name)\";"
        " cat ~/.aws/sso/cache/token.json; echo;"
        " echo refreshed > ~/.aws/sso/cache/token.json && echo sso-cache-writable"
    )
    code, out = containers.run("aws", "sh", "-c", script, user="4242:4242", volumes=(f"{aws}:/mnt/aws:ro",))
    assert code == 0, out
    assert "profile AKIDFROMPROFILE00001 eu-west-1" in out
    assert "cached-sso-token" in out and "sso-cache-writable" in out
    assert (
        "cached-sso-token" in (aws / "sso" / "cache" / "token.json").read_text()
    )  # the host's copy untouched


def test_unreadable_aws_config_is_a_clear_error(containers, tmp_path):
    aws = private_aws_dir(tmp_path, owner=4242)
    code, out = containers.run("aws-denied", "--version", volumes=(f"{aws}:/mnt/aws:ro",))
    assert code == 2, out
    assert "cannot read the AWS config mounted at /mnt/aws as uid 10001" in out
    assert '--user "$(id -u):$(id -g)"' in out and "Traceback" not in out
