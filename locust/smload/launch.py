"""The two commands that start Locust with the bundled locustfile (the package's own, so that a plain
``pip install`` has it) unless one is given, every other argument passed through:

``smload run``: a load test, exactly ``locust -f <bundled> ARGS``, with the web UI on 127.0.0.1
unless ``--web-host`` says otherwise (Locust's own default is every interface, and its UI has no
login: anyone who reaches it can start a test).

``smload calibrate``: find the endpoint's knee and recommend its autoscaling target.

    smload calibrate --endpoint-name NAME --payload PATH --slo "p99<300ms" --output DIR
                     [--endpoint-url URL] [--region R] [--instances N] [--max-error-rate 1%]
                     [--safety-factor 0.5] [--processes N] [any other load test option]

    It runs ``locust -f <bundled> --headless --calibrate --processes N ...`` (a master and N worker
    processes on this machine) with your options, so that the very same calibration runs inside
    Locust anywhere (the Helm chart's job mode passes ``--calibrate`` and the same options). Exit
    code: 0 with a recommendation, 3 when no step met the SLO and the error limit, 2 for bad options.

Options are checked by the plugin inside Locust (exit 2, one line). Never imports Locust itself,
except to print ``smload calibrate --help``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

CALIBRATE_HELP_GROUPS = ("SageMaker endpoint", "Calibration", "Checks and reports")
_DISTRIBUTED = ("--processes", "--master", "--worker")


def bundled_locustfile() -> Path:
    return Path(str(resources.files("smload").joinpath("locustfile.py")))


def given(args: list[str], *flags: str) -> bool:
    """Whether any of ``flags`` is on the command line (``--flag value`` or ``--flag=value``)."""
    return any(a in flags or a.startswith(tuple(f + "=" for f in flags)) for a in args)


def locust_command(argv: list[str], *defaults: str) -> list[str]:
    """``python -m locust [-f bundled] *defaults *argv``."""
    cmd = [sys.executable, "-m", "locust"]
    if not given(argv, "-f", "--locustfile") and not os.environ.get("LOCUST_LOCUSTFILE"):
        cmd += ["-f", str(bundled_locustfile())]
    return cmd + list(defaults) + list(argv)


def _run(cmd: list[str]) -> int:
    """Run Locust and return its exit code. Ctrl-C reaches Locust too: let it stop and write what it measured."""
    locust = subprocess.Popen(cmd)
    while True:
        try:
            return locust.wait()
        except KeyboardInterrupt:
            continue


def run_command(argv: list[str]) -> list[str]:
    defaults = []
    if not given(argv, "--web-host") and not os.environ.get("LOCUST_WEB_HOST"):
        defaults += ["--web-host", "127.0.0.1"]
    return locust_command(argv, *defaults)


def calibrate_command(argv: list[str]) -> list[str]:
    defaults = ["--headless", "--calibrate"]
    if not given(argv, *_DISTRIBUTED) and not os.environ.get("LOCUST_PROCESSES"):
        defaults += ["--processes", "-1"]  # one worker process per CPU
    return locust_command(argv, *defaults)


def run_main(argv: list[str] | None = None) -> int:
    return _run(run_command(sys.argv[1:] if argv is None else list(argv)))


def calibrate_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if given(argv, "-h", "--help"):
        sys.stdout.write(_calibrate_help())
        return 0
    return _run(calibrate_command(argv))


def _calibrate_help() -> str:
    """Our option groups as Locust's parser defines them (one source for the options and their help)."""
    import locust.argument_parser as locust_args

    from smload.run import hooks  # noqa: F401 - registers every option group with Locust's parser

    parser = locust_args.get_parser()
    formatter = parser._get_formatter()
    formatter.add_usage(
        "smload calibrate --endpoint-name NAME --payload PATH [--slo EXPR] [--output DIR] [options]",
        [],
        [],
        prefix="usage: ",
    )
    formatter.add_text(__doc__.split("\n\n")[4].strip())
    for group in parser._action_groups:
        if group.title in CALIBRATE_HELP_GROUPS:
            formatter.start_section(group.title)
            formatter.add_arguments([a for a in group._group_actions if a.dest != "calibrate"])
            formatter.end_section()
    formatter.add_text(
        "Also any Locust option, e.g. --processes N (default: one worker per CPU), --loglevel, "
        "--csv; see `locust --help`."
    )
    return formatter.format_help()
