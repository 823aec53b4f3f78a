"""``smload``: one console script, one subcommand per job. Subcommands are imported lazily so that
``smload emulator`` (asyncio) never imports Locust (gevent monkey-patching)."""

import importlib
import sys

from . import __version__
from .usage import EXIT_USAGE

# name -> (module with main(argv) -> int, one-line help)
COMMANDS = {
    "emulator": ("smload.emulator.cli", "run the SageMaker runtime emulator (the offline default target)"),
    "calibrate": ("smload.calibrate", "find the endpoint's knee and recommend its autoscaling target"),
    "k8s": ("smload.k8s", "status, scale, run and stop a load test deployed with the Helm chart"),
}

USAGE = "usage: smload {" + ",".join(COMMANDS) + "} [options]\n"


def _help() -> str:
    lines = [USAGE, "Load testing and capacity calibration for Amazon SageMaker real-time endpoints.\n", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += [
        "",
        "Load tests themselves run with Locust: locust -f locust/locustfile.py --endpoint-name NAME ...",
        "Run 'smload COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_help())
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        sys.stdout.write(f"smload {__version__}\n")
        return 0
    if argv[0] not in COMMANDS:
        sys.stderr.write(f"{USAGE}smload: error: unknown command {argv[0]!r}: choose one of {', '.join(COMMANDS)}\n")
        return EXIT_USAGE
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
