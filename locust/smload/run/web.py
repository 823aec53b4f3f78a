"""What the plugin adds to Locust's web UI on the master (or local runner):

* a start (``POST /swarm``) whose custom parameters do not pass the checks is refused before Locust
  applies them, with the message shown in the UI; nothing starts. A start with an arrival rate (the
  open-loop form fields) runs open loop: the rate shape is installed before Locust's own handler
  looks for a shape (and removed again for a start without one);
* ``GET /smload/checks?check=EXPR[&check=EXPR...]``: the ``--check`` expressions evaluated now, on
  the current (or last) test, by the same code and on the same merged histograms as a headless
  run's verdict. ``smload k8s run --check`` calls it through the API server's service proxy once a
  web-UI test has ended: in web UI mode Locust never quits, so the end-of-run verdict never happens.
  Answers ``{"results": [Result.as_dict(), ...], "table": [lines], "passed": bool}``, or 400 with
  ``{"error": "--check: ..."}`` for an expression that does not parse.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from locust.argument_parser import default_args_dict

from smload.results import checks
from smload.usage import UsageError

from . import verdict

logger = logging.getLogger("smload")
CHECKS_ROUTE = "/smload/checks"


def install(web_ui: Any, run: Any) -> None:
    from flask import jsonify, request

    environment = run.environment
    locust_own = set(default_args_dict())

    @web_ui.app.before_request
    def _refuse_bad_form() -> Any:
        if request.method != "POST" or not request.path.endswith("/swarm"):
            return None
        current = vars(environment.parsed_options)
        candidate = argparse.Namespace(**current)
        for key, value in request.form.items():
            if key in current and key not in locust_own:
                setattr(candidate, key, value == "true" if isinstance(current[key], bool) else value)
        try:
            run.check_options(candidate)
            run.install_open_loop()
        except UsageError as err:
            logger.error("refused to start: %s", err)
            return jsonify({"success": False, "message": str(err), "host": environment.host})
        return None

    @web_ui.app.route(CHECKS_ROUTE)
    @web_ui.auth_required_if_enabled
    def smload_checks() -> Any:
        try:
            wanted = checks.parse_all(request.args.getlist("check"))
        except UsageError as error:
            return jsonify({"error": str(error)}), 400
        results = verdict.evaluate(run, tuple(wanted))
        return jsonify({"results": [r.as_dict() for r in results], "table": checks.table(results),
                        "passed": all(r.passed for r in results)})
