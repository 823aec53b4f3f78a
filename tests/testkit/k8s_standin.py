"""A stand-in for the Kubernetes API server, because no API server can run on these machines.

It answers only what ``smload k8s`` may call, the way the API server does (objects, lists, ``Status``
errors), and checks every request on the way: the bearer token, the verb and the path, label
selectors, the patch's content type and body. Whatever it does not expect is answered 404 and kept
in ``unexpected``, so a test can assert that nothing else was asked. The objects it serves are the
chart's own, as ``helm template`` renders them.

The service proxy (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``) forwards to a real
process on 127.0.0.1, a real Locust master, as the API server forwards to the Service's pod. A
patch of a Deployment's scale subresource calls ``on_scale`` so that the test can play the
Deployment controller (start or stop real worker processes).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from testkit.support import free_port

PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
LISTS = {  # path prefix after /namespaces/NS/ -> (kind of the list, apiVersion, kind of its items)
    ("apis/apps/v1", "deployments"): ("DeploymentList", "apps/v1", "Deployment"),
    ("apis/batch/v1", "jobs"): ("JobList", "batch/v1", "Job"),
    ("api/v1", "services"): ("ServiceList", "v1", "Service"),
    ("apis/autoscaling/v2", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscalerList",
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ),
}


class _PassRedirects(urllib.request.HTTPRedirectHandler):
    """The API server's proxy hands a redirect back to the client; it does not follow it."""

    def redirect_request(self, *args, **kwargs):
        return None


_NO_REDIRECTS = urllib.request.build_opener(_PassRedirects)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: bytes


def status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors (k=v, k==v, k!=v), comma-separated; anything else is an error."""
    for term in filter(None, selector.split(",")):
        found = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", term)
        if not found:
            raise ValueError(f"unable to parse requirement: {term!r}")
        key, op, value = found.groups()
        if (labels.get(key) == value) != (op != "!="):
            return False
    return True


class StandIn:
    def __init__(
        self,
        objects: list[dict],
        token: str,
        namespace: str,
        backends: dict[tuple[str, str], str] | None = None,
        on_scale: Callable[[str, int], None] | None = None,
        ready: Callable[[str], int] | None = None,
        statuses: dict[str, dict] | None = None,
        forbidden: tuple[str, ...] = (),
    ):
        self.objects = copy.deepcopy(
            [o for o in objects if "helm.sh/hook" not in o["metadata"].get("annotations", {})]
        )
        self.token = token
        self.namespace = namespace
        self.backends = backends or {}  # (service, port name) -> "127.0.0.1:PORT"
        self.on_scale = on_scale or (lambda name, replicas: None)
        self.ready = ready or (lambda name: 0)  # Deployment name -> ready pods, for its status
        self.statuses = statuses or {}  # object name -> its status (Jobs)
        self.forbidden = forbidden  # "VERB path-regex": what RBAC would deny
        self.seen: list[Seen] = []
        self.unexpected: list[str] = []
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and contains in s.path]

    def kubeconfig(self, path, namespace: str | None = None, context: str = "standin") -> str:
        """A kubeconfig that points at this stand-in with its token."""
        context_entry = {
            "cluster": "standin",
            "user": "tester",
            **({"namespace": namespace} if namespace else {}),
        }
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": context,
                    "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": self.token}}],
                    "contexts": [{"name": context, "context": context_entry}],
                }
            )
        )
        return str(path)

    # ---- the API ------------------------------------------------------------------------------

    def _find(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    def _with_status(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if obj["kind"] == "Deployment":
            replicas = obj["spec"].get("replicas", 1)
            obj["status"] = {"replicas": replicas, "readyReplicas": self.ready(obj["metadata"]["name"])}
        if obj["metadata"]["name"] in self.statuses:
            obj["status"] = self.statuses[obj["metadata"]["name"]]
        return obj

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(raw_path)
        path, query = url.path, parse_qs(url.query)
        self.seen.append(Seen(method, path, query, headers.get("Content-Type"), body))
        if headers.get("Authorization", "").lower() != f"bearer {self.token}".lower():
            return self._json(401, status(401, "Unauthorized", "Unauthorized"))

        for rule in self.forbidden:
            verb, pattern = rule.split(" ", 1)
            if verb == method and re.fullmatch(pattern, path):
                return self._json(
                    403,
                    status(403, "Forbidden", f'{method} {path} is forbidden: User "tester" cannot do that'),
                )

        proxy = re.fullmatch(r"/api/v1/namespaces/([^/]+)/services/([^/:]+):([^/]+)/proxy/(.*)", path)
        if proxy:
            return self._proxy(method, proxy, url.query, headers, body)
        scale = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale", path)
        if scale and method == "PATCH":
            return self._scale(scale.group(1), scale.group(2), headers, body)
        listing = re.fullmatch(r"/(apis?/[^/]+(?:/v\d)?)/namespaces/([^/]+)/([a-z]+)", path)
        if listing and method == "GET" and (listing.group(1), listing.group(3)) in LISTS:
            return self._list(listing.group(1), listing.group(2), listing.group(3), query)
        self.unexpected.append(f"{method} {raw_path}")
        return self._json(
            404,
            status(404, "NotFound", f"the server could not find the requested resource ({method} {path})"),
        )

    def _list(self, group: str, namespace: str, resource: str, query: dict) -> tuple[int, dict, bytes]:
        list_kind, api_version, kind = LISTS[(group, resource)]
        selector = query.get("labelSelector", [""])[0]
        try:
            items = [
                self._with_status(o)
                for o in self.objects
                if o["kind"] == kind
                and o["metadata"].get("namespace") == namespace
                and matches(o["metadata"].get("labels", {}), selector)
            ]
        except ValueError as error:
            return self._json(400, status(400, "BadRequest", str(error)))
        return self._json(
            200,
            {
                "kind": list_kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": "1"},
                "items": items,
            },
        )

    def _scale(self, namespace: str, name: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        deployment = self._find("Deployment", name)
        if deployment is None or deployment["metadata"]["namespace"] != namespace:
            return self._json(404, status(404, "NotFound", f'deployments.apps "{name}" not found'))
        content_type = (headers.get("Content-Type") or "").split(";")[0]
        if content_type not in PATCH_TYPES:
            return self._json(
                415,
                status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
                ),
            )
        try:
            patch = json.loads(body)
            replicas = patch["spec"]["replicas"]
            assert patch == {"spec": {"replicas": replicas}} and isinstance(replicas, int) and replicas >= 0
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._json(422, status(422, "Invalid", f"Scale.autoscaling is invalid: {body[:200]!r}"))
        deployment["spec"]["replicas"] = replicas
        self.on_scale(name, replicas)
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        return self._json(
            200,
            {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": replicas},
                "status": {"replicas": replicas, "selector": selector},
            },
        )

    def _proxy(self, method: str, match, query: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        namespace, name, port, rest = match.groups()
        service = self._find("Service", name)
        if service is None or service["metadata"]["namespace"] != namespace:
            return self._json(404, status(404, "NotFound", f'services "{name}" not found'))
        if port not in {p["name"] for p in service["spec"]["ports"]}:
            return self._json(
                503, status(503, "ServiceUnavailable", f'no endpoints available for service "{name}:{port}"')
            )
        backend = self.backends.get((name, port))
        if backend is None:
            return self._json(
                503, status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
            )
        forwarded = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        target = f"http://{backend}/{unquote(rest)}" + (f"?{query}" if query else "")
        request = urllib.request.Request(
            target, data=body if method != "GET" else None, headers=forwarded, method=method
        )
        try:
            with _NO_REDIRECTS.open(request, timeout=30) as response:
                return (
                    response.status,
                    {"Content-Type": response.headers.get("Content-Type", "")},
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            passed = {k: v for k, v in error.headers.items() if k.lower() in ("content-type", "location")}
            return error.code, passed, error.read()
        except OSError as error:
            return self._json(
                503, status(503, "ServiceUnavailable", f"error trying to reach service: {error}")
            )

    @staticmethod
    def _json(code: int, obj: dict) -> tuple[int, dict, bytes]:
        return code, {"Content-Type": "application/json"}, json.dumps(obj).encode()

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code, headers, payload = standin.handle(self.command, self.path, self.headers, body)
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args) -> None:  # the test asserts on `seen`, not on stderr
                pass

        return Handler
