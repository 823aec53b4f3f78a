"""The OpenAI-compatible route: ``POST .../openai/v1/chat/completions``.

Paths, as AWS documents them (the base URL handed to an OpenAI client ends in ``/openai/v1``):
- ``/endpoints/{endpoint}/openai/v1/chat/completions``: the endpoint's variants by weight (or the
  ``X-Amzn-SageMaker-Target-Variant`` header);
- ``/endpoints/{endpoint}/inference-components/{component}/openai/v1/chat/completions``: one
  inference component (the ``X-Amzn-SageMaker-Inference-Component`` header works too);
- ``/openai/v1/chat/completions``: the emulator's shorthand: the endpoint (or ``endpoint/component``)
  named by the body's ``model``, else the first endpoint.

Authentication: ``Authorization: Bearer <token>`` (emulator/bearer.py: any non-empty token, or in
strict mode a verified one) or a SigV4 signature (as on the runtime API). An LLM variant answers in
OpenAI's format whatever its ``format``; a classic variant has no such route in its container and
answers 404 with an OpenAI error body (SageMaker hands the container's answer back as is).

``app``, ``conn`` and ``req`` are the server's ``App``, ``Connection`` and ``Request`` (not imported:
the server imports this module).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

from smload import errors

from . import bearer, sigv4, token_formats, wire
from .llm_server import OPENAI, RAW_STREAM
from .stats import UNKNOWN

if TYPE_CHECKING:
    from .capacity import VariantRuntime

SUFFIX = b"/openai/v1/chat/completions"
BASE = "/openai/v1"
_monotonic = time.monotonic


def match(path: bytes) -> tuple[bytes | None, bytes | None] | None:
    """(endpoint, component) named by a route path, None for another path. The shorthand route names
    neither (the body does)."""
    if path == SUFFIX:
        return None, None
    if not (path.startswith(b"/endpoints/") and path.endswith(SUFFIX)):
        return None
    middle = path[11 : -len(SUFFIX)]
    endpoint, _, rest = middle.partition(b"/")
    if not rest:
        return endpoint, None
    kind, _, component = rest.partition(b"/")
    if kind == b"inference-components" and component and b"/" not in component:
        return endpoint, component
    return None


def base_urls(config_json: dict, host: str) -> None:
    """Add ``openai_base_url`` (what to hand the openai SDK) to each endpoint and component of the
    effective configuration, on the host the client reached us by."""
    root = f"http://{host}"
    config_json["openai_base_url"] = root + BASE
    for endpoint in config_json["endpoints"]:
        endpoint["openai_base_url"] = f"{root}/endpoints/{endpoint['name']}{BASE}"
        for component in endpoint.get("inference_components", ()):
            component["openai_base_url"] = (
                f"{root}/endpoints/{endpoint['name']}/inference-components/{component['name']}{BASE}"
            )


class Route:
    def __init__(self, app) -> None:
        self.app = app
        config = app.config
        self.verifier = bearer.Verifier(config.access_keys, config.region) if config.strict_sigv4 else None

    def handle(self, conn, req, raw_endpoint: bytes | None, raw_component: bytes | None) -> None:
        app = self.app
        doc = None
        if raw_endpoint is None:  # the shorthand: the body names the endpoint
            doc = _json(req.body)
            model = doc.get("model") if isinstance(doc, dict) else None
            first = app.config.endpoints[0].name
            name, _, component = (model if isinstance(model, str) and model else first).partition("/")
            if name.encode() not in app.endpoints:
                name, component = first, ""
            raw_endpoint, raw_component = name.encode(), component.encode() or None
        endpoint = app.endpoints.get(raw_endpoint)
        name = endpoint.name if endpoint else _decode(raw_endpoint)
        header = req.headers.get(b"x-amzn-sagemaker-inference-component")
        raw_component = raw_component or header
        auth_error = self.authenticate(req)
        if auth_error is not None or endpoint is None:
            vstats = app.stats.variant(name, UNKNOWN)
            vstats.requests += 1
            if auth_error is not None:
                body = (
                    json.dumps({"Message": auth_error.message}).encode()
                    if auth_error.code in (bearer.EXPIRED.code, bearer.INVALID.code)
                    else None
                )
                code = auth_error.code if body is not None else auth_error.code + sigv4.CORAL
                app.fail(
                    conn,
                    req,
                    vstats,
                    auth_error.status,
                    code,
                    auth_error.message,
                    errors.ACCESS_DENIED,
                    body=body,
                )
            else:
                app.fail(
                    conn,
                    req,
                    vstats,
                    400,
                    errors.VALIDATION_ERROR,
                    f"Endpoint {name} of account {wire.ACCOUNT} not found.",
                    errors.VALIDATION_ERROR,
                )
            return
        target = app.route_target(conn, req, endpoint, raw_component)
        if target is None:
            return  # answered: no such variant or component
        vstats = target.stats
        vstats.requests += 1
        if target.llm is None:  # the container's own 404, handed back as is (no AWS error type)
            body = token_formats.openai_error(
                404,
                f"{_what(target)} serves a classic model: its container has no /v1/chat/completions "
                "(use InvokeEndpoint)",
            )
            conn.send(
                app.head(404, b"application/json", len(body), target.name_header, req.keep_alive) + body,
                req.keep_alive,
            )
            vstats.answered("404", errors.HTTP_ERROR, _monotonic() - req.received)
            return
        if app.front_end_fault(conn, req, target, OPENAI):
            return
        if doc is None:
            doc = _json(req.body)
        if doc is None:
            target.llm.container_error(conn, req, OPENAI, 400, "Invalid JSON in the request body")
            return
        target.llm.handle(conn, req, RAW_STREAM, OPENAI, doc=doc, fmt="openai")

    def authenticate(self, req) -> sigv4.AuthError | None:
        value = req.headers.get(b"authorization")
        if value is None:
            return sigv4.MISSING_TOKEN
        if value[:7].lower() != b"bearer ":
            return self.app.authenticate(req)  # a SigV4-signed request
        token = value[7:].decode("latin-1")
        if self.verifier is None:
            return bearer.check_present(token)
        return self.verifier.verify(token)


def _json(body: bytes):
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _decode(raw: bytes) -> str:
    name = raw.decode("latin-1")
    return unquote(name) if "%" in name else name


def _what(target: VariantRuntime) -> str:
    return f"Inference component {target.name}" if target.component else f"Variant {target.name}"
