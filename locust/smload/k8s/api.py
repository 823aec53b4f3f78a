"""The few Kubernetes API calls ``smload k8s`` makes, as plain HTTP through the ``kubernetes``
client's configured connection (TLS, client certificates, proxies and token refresh are the
client's). Requests are spelled out (path, verb, content type, body) rather than going through
the generated API classes: a handful of calls, readable, and the same on every client version."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, message: str):
        super().__init__(f"{method} {path}: {status} {message}")
        self.method, self.path, self.status, self.message = method, path, status, message


class Api:
    def __init__(self, configuration: client.Configuration, timeout: float = 30.0):
        self.configuration = configuration
        self.api_client = client.ApiClient(configuration)
        self.timeout = timeout

    def close(self) -> None:
        self.api_client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        json_body: object = None,
        form: dict | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> tuple[int, dict, bytes]:
        """One request; returns (status, headers, body) whatever the status. Raises ApiError when
        the server cannot be reached."""
        url = self.configuration.host.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": accept, "User-Agent": "smload-k8s"}
        for auth in self.configuration.auth_settings().values():  # bearer token, refreshed by the client
            if auth["in"] == "header" and auth["value"]:
                headers[auth["key"]] = auth["value"]
        if json_body is not None:
            headers["Content-Type"] = content_type or "application/json"  # the client serializes the body
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = self.api_client.rest_client.request(
                method,
                url,
                headers=headers,
                body=json_body,
                post_params=form,
                _request_timeout=(10, int(self.timeout)),
            )
        except (
            ApiException
        ) as error:  # clients < 36 raise on any status outside 2xx, all of them on TLS errors
            if not error.status:
                raise ApiError(
                    method,
                    path,
                    0,
                    f"cannot reach the API server at {self.configuration.host}: {error.reason}",
                ) from None
            return error.status, dict(error.headers or {}), _bytes(error.body)
        except urllib3.exceptions.HTTPError as error:
            raise ApiError(
                method, path, 0, f"cannot reach the API server at {self.configuration.host}: {error}"
            ) from None
        data = response.data if response.data is not None else response.read()  # clients >= 36 read lazily
        return response.status, dict(response.getheaders()), _bytes(data)

    def json(self, method: str, path: str, **kwargs) -> dict:
        status, _, body = self.request(method, path, **kwargs)
        if not 200 <= status < 300:
            raise ApiError(method, path, status, _reason(body))
        return json.loads(body)

    def list(self, path: str, selector: str) -> list[dict]:
        return self.json("GET", path, query={"labelSelector": selector})["items"]

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.json("PATCH", path, json_body=body, content_type=MERGE_PATCH)


def service_proxy_path(namespace: str, service: str, port: str, path: str) -> str:
    """The API server's proxy to a Service's port: /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH."""
    return f"/api/v1/namespaces/{quote(namespace)}/services/{quote(service)}:{quote(port)}/proxy/{path.lstrip('/')}"


def _bytes(data: bytes | str | None) -> bytes:
    """Clients < 36 decode bodies to str."""
    return data.encode() if isinstance(data, str) else (data or b"")


def _reason(body: bytes) -> str:
    """The message of a Kubernetes Status object, else the start of the body."""
    try:
        status = json.loads(body)
        return f"{status.get('reason', '')}: {status['message']}".lstrip(": ")
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200].decode(errors="replace").strip()
