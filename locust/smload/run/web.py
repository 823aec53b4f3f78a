"""What the plugin adds to Locust's web UI on the master (or local runner):

* a start (``POST /swarm``) is checked whole before Locust applies any of it (Locust applies the
  fields one by one and stops at a bad one, leaving the ones before it changed): our options by
  their declarations, Locust's user count, spawn rate and run time; a refused form changes nothing
  and its message is shown in the UI. The form can only choose among what the operator allowed at
  start-up: ``--payload`` files under the start-up payload location (the working directory when none
  was given), and the start-up ``--endpoint-url`` (AWS's own for the region when none was given)
  unless ``--web-any-endpoint``: the UI has no login, and whoever reaches it must not be able to
  have the workers send a readable file, signed, to a host of their choosing. A start with an
  arrival rate (the open-loop form fields) runs open loop: the rate shape is installed before
  Locust's own handler looks for a shape (and removed again for a start without one);
* ``GET /smload/checks?check=EXPR[&check=EXPR...]``: the ``--check`` expressions evaluated now, on
  the current (or last) test, by the same code and on the same merged histograms as a headless
  run's verdict. ``smload k8s run --check`` calls it through the API server's service proxy once a
  web-UI test has ended: in web UI mode Locust never quits, so the end-of-run verdict never happens.
  Answers ``{"results": [Result.as_dict(), ...], "table": [lines], "passed": bool}``, or 400 with
  ``{"error": "--check: ..."}`` for an expression that does not parse.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent import pywsgi
from locust.argument_parser import default_args_dict
from locust.util.timespan import parse_timespan

from smload.results import checks
from smload.usage import UsageError

from . import verdict

logger = logging.getLogger("smload")
CHECKS_ROUTE = "/smload/checks"


def _locust_field(name: str, parse: Any) -> Any:
    def check(value: str) -> None:
        if name == "run_time" and not value:
            return
        try:
            parse(value)
        except ValueError:
            raise UsageError(name, f"{value!r} is not valid") from None

    return check


# Locust's own form fields that it converts (and may fail on after applying the fields before them)
LOCUST_FIELDS = {
    "user_count": _locust_field("user_count", int),
    "spawn_rate": _locust_field("spawn_rate", float),
    "run_time": _locust_field("run_time", parse_timespan),
}


class FormLimits:
    """What the operator allowed at start-up, and the check that a form stays within it."""

    def __init__(self, options: Any):
        payload = getattr(options, "payload", None)
        self.payload_root = os.path.realpath(os.path.expanduser(str(payload))) if payload else os.getcwd()
        self.endpoint_url = _origin(getattr(options, "endpoint_url", None))
        self.any_endpoint = bool(getattr(options, "web_any_endpoint", False))

    def check(self, candidate: Any) -> None:
        payload = getattr(candidate, "payload", None)
        if payload:
            path = os.path.realpath(os.path.expanduser(str(payload)))
            if path != self.payload_root and not path.startswith(self.payload_root.rstrip("/") + "/"):
                raise UsageError(
                    "--payload",
                    f"the web UI can only choose payloads under {self.payload_root!r}, "
                    "the start-up --payload location",
                )
        url = _origin(getattr(candidate, "endpoint_url", None))
        if url != self.endpoint_url and not self.any_endpoint:
            allowed = self.endpoint_url or "AWS's runtime URL of the region (none was given at start-up)"
            raise UsageError(
                "--endpoint-url",
                f"the web UI keeps the start-up endpoint URL ({allowed}): "
                "start Locust with --web-any-endpoint to allow others",
            )


def _origin(url: Any) -> str | None:
    """scheme://host:port of a URL (None for none); what decides where requests go."""
    if not url or not str(url).strip():
        return None
    parts = urlsplit(str(url).strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}{parts.path.rstrip('/')}"


def install(web_ui: Any, run: Any) -> None:
    from flask import jsonify, request

    environment = run.environment
    locust_own = set(default_args_dict())

    startup = FormLimits(environment.parsed_options)

    @web_ui.app.before_request
    def _refuse_bad_form() -> Any:
        if request.method != "POST" or not request.path.endswith("/swarm"):
            return None
        current = vars(environment.parsed_options)
        candidate = argparse.Namespace(**current)
        try:
            for key, value in request.form.items():
                if key in LOCUST_FIELDS:
                    LOCUST_FIELDS[key](value)
                elif key in current and key not in locust_own:
                    setattr(candidate, key, value == "true" if isinstance(current[key], bool) else value)
            startup.check(candidate)
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
        return jsonify(
            {
                "results": [r.as_dict() for r in results],
                "table": checks.table(results),
                "passed": all(r.passed for r in results),
            }
        )


class ClientErrorHandler(pywsgi.WSGIHandler):
    """gevent's request handler, with two changes for servers that anyone on the network may reach:

    * a head with more header lines than Python's parser takes (100) is the client's error: a 400
      and one log line, as gevent gives any other malformed request, not a traceback printed to
      stderr for every such request (an abusive client could flood the logs);
    * after each request the other greenlets get a turn: requests pipelined on one connection are
      read from its buffer without blocking, so one client could otherwise hold the loop (and every
      other client, the load test's own reports too) for as long as its pipeline lasts."""

    def handle_one_request(self):  # noqa: ANN201 - gevent's own protocol of return values
        result = super().handle_one_request()
        gevent.sleep(0)
        return result

    def read_request(self, raw_requestline: str) -> bool:
        try:
            return super().read_request(raw_requestline)
        except http.client.HTTPException as err:
            raise ValueError(str(err)) from None


def serve_client_errors_quietly() -> None:
    """Every gevent WSGI server of this process (Locust's web UI, the exporter) with that handler."""
    pywsgi.WSGIServer.handler_class = ClientErrorHandler
