"""``smload calibrate``: find the endpoint's knee and recommend its autoscaling target.

    smload calibrate --endpoint-name NAME --payload PATH --slo "p99<300ms" --output DIR
                     [--endpoint-url URL] [--region R] [--instances N] [--max-error-rate 1%]
                     [--safety-factor 0.5] [--processes N] [any other load test option]

A front end to Locust, nothing more: it runs ``locust -f <bundled locustfile> --headless
--calibrate --processes N ...`` (a master and N worker processes on this machine) with your options,
so that the very same calibration runs inside Locust anywhere (the Helm chart's job mode passes
``--calibrate`` and the same options). Options are checked by Locust's plugins (exit 2, one line).
Exit code: 0 with a recommendation, 3 when no step met the SLO and the error limit, 2 for bad options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .usage import EXIT_USAGE

HELP_GROUPS = ("SageMaker endpoint", "Calibration", "Checks and reports")
_DISTRIBUTED = ("--processes", "--master", "--worker")


def bundled_locustfile() -> Path | None:
    """The locustfile next to this package (a source checkout or editable install), or the image's."""
    for candidate in (Path(__file__).resolve().parent.parent / "locustfile.py", Path("/opt/smload/locustfile.py")):
        if candidate.is_file():
            return candidate
    return None


def _given(args: list[str], *flags: str) -> bool:
    return any(a in flags or a.startswith(tuple(f + "=" for f in flags)) for a in args)


def command(argv: list[str]) -> list[str]:
    """The Locust command line that runs the calibration."""
    cmd = [sys.executable, "-m", "locust"]
    if not _given(argv, "-f", "--locustfile") and not os.environ.get("LOCUST_LOCUSTFILE"):
        locustfile = bundled_locustfile()
        if locustfile is None:
            raise FileNotFoundError("the bundled locustfile is not installed here: give -f LOCUSTFILE")
        cmd += ["-f", str(locustfile)]
    cmd += ["--headless", "--calibrate"]
    if not _given(argv, *_DISTRIBUTED) and not os.environ.get("LOCUST_PROCESSES"):
        cmd += ["--processes", "-1"]  # one worker process per CPU
    return cmd + list(argv)


def _help() -> str:
    """Our option groups as Locust's parser defines them (one source for the options and their help)."""
    import locust.argument_parser as locust_args

    from . import calibration_shape, plugin, verdict  # noqa: F401 - register their option groups

    parser = locust_args.get_parser()
    formatter = parser._get_formatter()
    formatter.add_usage("smload calibrate --endpoint-name NAME --payload PATH [--slo EXPR] [--output DIR] [options]",
                        [], [], prefix="usage: ")
    formatter.add_text(__doc__.split("\n\n", 2)[2].strip())
    for group in parser._action_groups:
        if group.title in HELP_GROUPS:
            formatter.start_section(group.title)
            formatter.add_arguments([a for a in group._group_actions if a.dest != "calibrate"])
            formatter.end_section()
    formatter.add_text("Also any Locust option, e.g. --processes N (default: one worker per CPU), --loglevel, "
                       "--csv; see `locust --help`.")
    return formatter.format_help()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _given(argv, "-h", "--help"):
        sys.stdout.write(_help())
        return 0
    try:
        cmd = command(argv)
    except FileNotFoundError as err:
        sys.stderr.write(f"smload calibrate: error: {err}\n")
        return EXIT_USAGE
    locust = subprocess.Popen(cmd)
    while True:
        try:
            return locust.wait()
        except KeyboardInterrupt:  # Locust got the Ctrl-C too: let it stop and write what it measured
            continue
