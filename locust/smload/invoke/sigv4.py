"""AWS Signature Version 4 for InvokeEndpoint, built for the request path of a load generator.

botocore's ``SigV4Auth`` re-derives everything for every request: it parses the URL, lower-cases
and sorts the headers, hashes the body and derives the signing key with four HMACs. For a stream of
requests that differ only in their body and timestamp almost all of that is constant, so here:

* the canonical request is two pre-built strings around the timestamp (and session token),
  one pair per (content type, with/without token), built once;
* the payload hash comes with the payload (computed once when payloads are loaded);
* the signing key is cached per (secret, day), region and service being fixed per signer;
* what is left per request is one SHA-256 of the canonical request and one HMAC, and not even
  that when the same body goes out again within the same second (the same inputs sign to the
  same bytes).

The result is byte-for-byte what botocore produces (``tests/unit/test_core_sigv4.py`` checks it
against ``botocore.auth.SigV4Auth``). Import-light: hashlib and hmac only.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import NamedTuple

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sagemaker"  # the signing name of sagemaker-runtime
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    key = hmac.digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


class _Template(NamedTuple):
    before_date: str  # canonical request up to and including "x-amz-date:"
    after_date: str  # canonical headers after x-amz-date(+token), the signed headers, ends with "\n"
    signed_headers: str
    wire_headers: str  # the request line and the unsigned-part headers, each ending with CRLF


class SignedHead(NamedTuple):
    head: str  # the whole request head: request line, headers, blank line
    amz_date: str


def amz_date(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


class Signer:
    """Signs one kind of request (method, host, path and fixed headers) with varying bodies.

    ``headers`` are the request's own headers (e.g. ``Accept``, ``X-Amzn-SageMaker-Target-Variant``)
    without ``Content-Type``, which comes with each payload. Header values must already be valid
    (no CR/LF): options are validated before any signer is built.
    """

    def __init__(self, region: str, method: str, host: str, path: str, headers: Iterable[tuple[str, str]] = (),
                 service: str = SERVICE, user_agent: str | None = None):
        self.region = region
        self.service = service
        self.method = method
        self.host = host
        self.path = path
        self.headers = list(headers)
        self.user_agent = user_agent
        self._templates: dict[tuple[str | None, bool], _Template] = {}
        self._keys: dict[tuple[str, str], bytes] = {}
        self._date_second = -1
        self._date = ""
        self._heads: dict[tuple, SignedHead] = {}  # this second's signed heads

    def _template(self, content_type: str | None, with_token: bool) -> _Template:
        # SigV4 "Trimall": the canonical form squeezes whitespace, the wire keeps the value as given
        canonical = {name.lower(): " ".join(value.split()) for name, value in self.headers}
        canonical["host"] = self.host
        if content_type:
            canonical["content-type"] = " ".join(content_type.split())
        canonical["x-amz-date"] = ""
        if with_token:
            canonical["x-amz-security-token"] = ""
        names = sorted(canonical)
        date_at = names.index("x-amz-date")
        after_token = date_at + (2 if with_token else 1)
        before = "".join(f"{n}:{canonical[n]}\n" for n in names[:date_at])
        after = "".join(f"{n}:{canonical[n]}\n" for n in names[after_token:])
        signed = ";".join(names)
        wire = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}"]
        if content_type:
            wire.append(f"Content-Type: {content_type}")
        wire += [f"{name}: {value}" for name, value in self.headers]
        if self.user_agent:
            wire.append(f"User-Agent: {self.user_agent}")
        return _Template(
            before_date=f"{self.method}\n{self.path}\n\n{before}x-amz-date:",
            after_date=f"{after}\n{signed}\n",
            signed_headers=signed,
            wire_headers="\r\n".join(wire) + "\r\n",
        )

    def _key(self, secret_key: str, date: str) -> bytes:
        try:
            return self._keys[(secret_key, date)]
        except KeyError:
            if len(self._keys) > 8:  # old days and rotated secrets
                self._keys.clear()
            key = self._keys[(secret_key, date)] = signing_key(secret_key, date, self.region, self.service)
            return key

    def sign(self, access_key: str, secret_key: str, token: str | None, content_type: str | None,
             payload_sha256: str, content_length: int, now: float | None = None) -> SignedHead:
        """The signed request head (to be followed by the body on the wire)."""
        if now is None:
            now = time.time()
        second = int(now)
        if second != self._date_second:
            self._date = amz_date(second)
            self._date_second = second
            self._heads.clear()
        date = self._date
        # Within one second the same body and credentials sign to the same bytes: reuse them.
        memo = (payload_sha256, content_type, content_length, access_key, secret_key, token)
        head = self._heads.get(memo)
        if head is not None:
            return head
        try:
            template = self._templates[(content_type, token is not None)]
        except KeyError:
            template = self._templates[(content_type, token is not None)] = self._template(content_type, token is not None)
        if token is None:
            canonical = f"{template.before_date}{date}\n{template.after_date}{payload_sha256}"
            token_header = ""
        else:
            canonical = f"{template.before_date}{date}\nx-amz-security-token:{token}\n{template.after_date}{payload_sha256}"
            token_header = f"X-Amz-Security-Token: {token}\r\n"
        day = date[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        string_to_sign = f"{ALGORITHM}\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.digest(self._key(secret_key, day), string_to_sign.encode(), "sha256").hex()
        head = SignedHead(
            f"{template.wire_headers}Content-Length: {content_length}\r\nX-Amz-Date: {date}\r\n{token_header}"
            f"Authorization: {ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={template.signed_headers}, Signature={signature}\r\n\r\n",
            date,
        )
        if len(self._heads) < 256:  # a few bodies are the common case; thousands just sign again
            self._heads[memo] = head
        return head


def host_header(scheme: str, host: str, port: int | None) -> str:
    """The Host header (and SigV4 ``host``) as botocore writes it: the port only when not the default."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return host
    return f"{host}:{port}"
