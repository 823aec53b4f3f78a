"""``GET /smload/checks?check=EXPR[&check=EXPR...]`` on the master's web UI: the ``--check``
expressions evaluated now, on the current (or last) test, by the same code and on the same merged
histograms as a headless run's verdict (:mod:`smload.verdict`). ``smload k8s run --check`` calls it
through the API server's service proxy once a web-UI test has ended: in web UI mode Locust never
quits, so the end-of-run verdict never happens.

Answers ``{"results": [Result.as_dict(), ...], "table": [lines], "passed": bool}``, or 400 with
``{"error": "--check: ..."}`` for an expression that does not parse.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.runners import WorkerRunner

from . import checks, verdict
from .usage import UsageError

ROUTE = "/smload/checks"


@events.init.add_listener
def _add_route(environment: Any, web_ui: Any = None, **_kwargs: Any) -> None:
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return
    from flask import jsonify, request

    @web_ui.app.route(ROUTE)
    @web_ui.auth_required_if_enabled
    def smload_checks() -> Any:
        try:
            wanted = checks.parse_all(request.args.getlist("check"))
        except UsageError as error:
            return jsonify({"error": str(error)}), 400
        results = checks.evaluate(wanted, verdict.observer(environment))
        return jsonify({"results": [r.as_dict() for r in results], "table": checks.table(results),
                        "passed": all(r.passed for r in results)})
