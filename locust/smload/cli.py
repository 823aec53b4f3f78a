"""``smload``: one console script, one subcommand per job. Subcommands are imported lazily so that
``smload emulator`` (asyncio) never imports Locust (gevent monkey-patching)."""

import importlib
import sys

from .exit_codes import USAGE as EXIT_USAGE
from .version import VERSION

# name -> ("module:function" taking argv and returning the exit code, one-line help)
COMMANDS = {
    "run": (
        "smload.launch:run_main",
        "run a load test: Locust with the bundled locustfile (all Locust options too)",
    ),
    "calibrate": (
        "smload.launch:calibrate_main",
        "find the endpoint's knee and recommend its autoscaling target",
    ),
    "autoscaling": (
        "smload.calibration.autoscaling:main",
        "simulate autoscaling policies on a traffic profile; verify one",
    ),
    "compare": (
        "smload.compare_command:main",
        "compare two runs' report.json with confidence intervals; gate CI on regressions",
    ),
    "emulator": (
        "smload.emulator.cli:main",
        "run the SageMaker runtime emulator (the offline default target)",
    ),
    "k8s": ("smload.k8s:main", "status, scale, run and stop a load test deployed with the Helm chart"),
}

USAGE = "usage: smload {" + ",".join(COMMANDS) + "} [options]\n"


def _help() -> str:
    lines = [
        USAGE,
        "Load testing and capacity calibration for Amazon SageMaker real-time endpoints.\n",
        "commands:",
    ]
    width = max(map(len, COMMANDS))
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += [
        "",
        "smload run takes every Locust option: smload run --endpoint-name NAME --payload PATH --headless -u 10 -t 1m",
        "Run 'smload COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_help())
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        sys.stdout.write(f"smload {VERSION}\n")
        return 0
    if argv[0] not in COMMANDS:
        sys.stderr.write(
            f"{USAGE}smload: error: unknown command {argv[0]!r}: choose one of {', '.join(COMMANDS)}\n"
        )
        return EXIT_USAGE
    module, function = COMMANDS[argv[0]][0].split(":")
    return getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
