"""AWS Signature Version 4, built for the request path of a load generator.

Two layers:

* **The rules** (:func:`canonical_request` and the functions it is made of) give the canonical
  request of any request the way AWS computes it for the services that are not S3 (SageMaker is
  one): the path as sent with its dot and empty segments removed, then percent-encoded once more (the
  request line carries it encoded already: ``%2D`` is signed as ``%252D``, ``:`` as ``%3A``); each
  query parameter decoded as a server decodes it (a raw ``+`` is a space) and encoded again,
  sorted; repeated headers joined with commas in the order sent, values trimmed. They run once per
  :class:`Signer` and content type, never per request.
* **:class:`Signer`** signs a stream of requests that differ only in their body, timestamp and
  credentials. Almost all of botocore's per-request work (``SigV4Auth`` parses the URL, lower-cases
  and sorts the headers, hashes the body and derives the signing key with four HMACs) is constant
  there, so:

  - the canonical request is pre-built strings around what changes (the date, the session token,
    the payload hash), one set per (content type, with/without token);
  - the payload hash comes with the payload (computed once when payloads are loaded);
  - the signing key is cached per (secret, day), region and service being fixed per signer;
  - what is left per request is one SHA-256 of the canonical request and one HMAC, and not even
    that when the same body goes out again within the same second (the same inputs sign to the
    same bytes).

Checked against AWS's SigV4 test suite (``tests/testkit/sigv4_suite.py``) and, over random paths,
queries, repeated headers and session tokens, byte for byte against botocore's ``SigV4Auth``
(``tests/unit/test_sigv4_against_botocore.py``). Import-light: hashlib, hmac and urllib.parse only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sagemaker"  # the signing name of sagemaker-runtime
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Sent but never signed: botocore's SIGNED_HEADERS_BLACKLIST (hop-by-hop headers a proxy may change,
# tracing headers a proxy may add, and the User-Agent).
UNSIGNED_HEADERS = frozenset(
    "baggage connection expect keep-alive proxy-authenticate proxy-authorization te traceparent tracestate "
    "trailer transfer-encoding upgrade user-agent x-amzn-trace-id".split()
)
# Written by the Signer itself: a caller's header of one of these names would be sent twice.
_OWN_HEADERS = frozenset(
    "host content-type content-length x-amz-date x-amz-security-token x-amz-content-sha256 authorization".split()
)
# What a request line may carry raw (RFC 3986 pchar, "/" and, in the query, "?"; "%" of the escapes
# already there): anything else is percent-encoded before it is sent, and signed as sent.
_PATH_CHARS = "!$&'()*+,;=:@/%-._~"
_QUERY_CHARS = _PATH_CHARS + "?"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    key = hmac.digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


# --- the rules ------------------------------------------------------------------------------------


def normalize_path(path: str) -> str:
    """Dot segments removed (RFC 3986, 5.2.4) and empty ones too (AWS: ``//`` is ``/``); a trailing
    slash kept. The same as botocore's ``normalize_url_path``."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    return "/" + "/".join(segments) + ("/" if segments and path.endswith("/") else "")


def canonical_path(path: str) -> str:
    """The canonical URI of a path as it appears in the request line: normalised, then URI-encoded
    (again: a non-S3 service encodes the already encoded path a second time)."""
    return quote(normalize_path(path), safe="/~")


def _query_component(text: str) -> str:
    # decoded as a server decodes a query (form encoding: "+" is a space; an invalid escape is
    # literal), encoded as SigV4 wants it: every byte but the unreserved ones as %XY
    return quote(unquote_to_bytes(text.replace("+", " ")), safe="-_.~")


def canonical_query(query: str) -> str:
    """The canonical query string of a query as it appears in the request line (without the ``?``):
    each name and value decoded and encoded again, the pairs sorted by name, then value."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            pairs.append((_query_component(name), _query_component(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header lines, each ending with a newline; signed header names): names lower-cased
    and sorted, a repeated header's values joined with commas in the order given, each value
    trimmed and its inner whitespace runs squeezed to one space (SigV4's Trimall)."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        name = name.lower()
        if name not in UNSIGNED_HEADERS:
            values.setdefault(name, []).append(" ".join(value.split()))
    names = sorted(values)
    return "".join(f"{name}:{','.join(values[name])}\n" for name in names), ";".join(names)


def canonical_request(
    method: str, path: str, query: str, headers: Iterable[tuple[str, str]], payload_sha256: str
) -> str:
    """The canonical request of a request as received: ``headers`` are (name, value) pairs as sent,
    repeated names included, all of them signed but the :data:`UNSIGNED_HEADERS`."""
    lines, signed = canonical_headers(headers)
    return f"{method.upper()}\n{canonical_path(path)}\n{canonical_query(query)}\n{lines}\n{signed}\n{payload_sha256}"


def scope(amz_date: str, region: str, service: str) -> str:
    return f"{amz_date[:8]}/{region}/{service}/aws4_request"


def signature(secret_key: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    """The hex signature of a canonical request signed at ``amz_date`` (``YYYYMMDDTHHMMSSZ``)."""
    string_to_sign = (
        f"{ALGORITHM}\n{amz_date}\n{scope(amz_date, region, service)}\n"
        f"{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = signing_key(secret_key, amz_date[:8], region, service)
    return hmac.digest(key, string_to_sign.encode(), "sha256").hex()


def authorization(
    access_key: str, signed_headers: str, signature_hex: str, amz_date: str, region: str, service: str
) -> str:
    """The ``Authorization`` header value."""
    return (
        f"{ALGORITHM} Credential={access_key}/{scope(amz_date, region, service)}, "
        f"SignedHeaders={signed_headers}, Signature={signature_hex}"
    )


# --- the signer of the request path ---------------------------------------------------------------


class _Template(NamedTuple):
    # canonical request = before_date DATE [between TOKEN] after PAYLOAD_HASH
    before_date: str  # method, path, query and the canonical headers up to and including "x-amz-date:"
    between: str  # with a token: the headers after the date up to and including "x-amz-security-token:"
    after: str  # the rest of the canonical headers, the signed header names, ends with "\n"
    signed_headers: str
    wire_headers: str  # the request line and the headers that do not change, each ending with CRLF


class SignedHead(NamedTuple):
    head: str  # the whole request head: request line, headers, blank line
    amz_date: str


def amz_date(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def _check_value(what: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{what} contains CR, LF or NUL: {value!r}")


class Signer:
    """Signs one kind of request (method, host, path, query and fixed headers) with varying bodies.

    ``path`` and ``query`` are the request line's (``query`` without the ``?``); a character that may
    not appear there raw (a space, a non-ASCII character) is percent-encoded before it is sent, and
    signed as sent. ``headers`` are the request's own headers (e.g. ``Accept``,
    ``X-Amzn-SageMaker-Target-Variant``; repeated names are sent and signed in the order given)
    without ``Content-Type``, which comes with each payload, and without the headers the signer
    writes itself (``Host``, ``X-Amz-Date``, ...): those raise ``ValueError``, as does a CR, LF or
    NUL in a value.
    """

    def __init__(
        self,
        region: str,
        method: str,
        host: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        service: str = SERVICE,
        user_agent: str | None = None,
        query: str = "",
    ):
        self.region = region
        self.service = service
        self.method = method
        self.host = host
        self.path = quote(path if path.startswith("/") else "/" + path, safe=_PATH_CHARS)
        self.query = quote(query, safe=_QUERY_CHARS)
        self.headers = list(headers)
        for name, value in self.headers:
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"not a header name: {name!r}")
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"the signer writes the {name} header itself")
            _check_value(f"header {name}", value)
        for what, value in (("host", host), ("User-Agent", user_agent or "")):
            _check_value(what, value)
        self.user_agent = user_agent
        self._templates: dict[tuple[str | None, bool], _Template] = {}
        self._keys: dict[tuple[str, str], bytes] = {}
        self._date_second = -1
        self._date = ""
        self._heads: dict[tuple, SignedHead] = {}  # this second's signed heads
        self._token: str | None = None  # the last session token, its canonical value and header line
        self._token_value = ""
        self._token_header = ""

    def _template(self, content_type: str | None, with_token: bool) -> _Template:
        """The canonical request around its slots, by the same rules as :func:`canonical_request`
        (the date and token values are placeholders here, cut out below)."""
        headers = [("host", self.host), *self.headers, ("x-amz-date", "\0date")]
        if content_type:
            _check_value("Content-Type", content_type)
            headers.append(("content-type", content_type))
        if with_token:
            headers.append(("x-amz-security-token", "\0token"))
        lines, signed = canonical_headers(headers)
        before_date, rest = lines.split("\0date", 1)
        between, after = rest.split("\0token", 1) if with_token else ("", rest)
        target = f"{self.path}?{self.query}" if self.query else self.path
        head = f"{self.method.upper()}\n{canonical_path(self.path)}\n{canonical_query(self.query)}\n"
        wire = [f"{self.method} {target} HTTP/1.1", f"Host: {self.host}"]
        if content_type:
            wire.append(f"Content-Type: {content_type}")
        wire += [f"{name}: {value}" for name, value in self.headers]
        if self.user_agent:
            wire.append(f"User-Agent: {self.user_agent}")
        return _Template(
            before_date=head + before_date,
            between=between,
            after=f"{after}\n{signed}\n",
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

    def _set_token(self, token: str) -> None:
        _check_value("the session token", token)
        self._token = token
        self._token_value = " ".join(token.split())  # Trimall, like any signed header
        self._token_header = f"X-Amz-Security-Token: {token}\r\n"

    def sign(
        self,
        access_key: str,
        secret_key: str,
        token: str | None,
        content_type: str | None,
        payload_sha256: str,
        content_length: int,
        now: float | None = None,
    ) -> SignedHead:
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
            template = self._templates[(content_type, token is not None)] = self._template(
                content_type, token is not None
            )
        if token is None:
            canonical = f"{template.before_date}{date}{template.after}{payload_sha256}"
            token_header = ""
        else:
            if token != self._token:
                self._set_token(token)
            canonical = f"{template.before_date}{date}{template.between}{self._token_value}{template.after}{payload_sha256}"
            token_header = self._token_header
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
