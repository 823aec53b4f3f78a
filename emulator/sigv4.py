"""Checking AWS Signature Version 4 on the server side.

Default mode accepts any well-formed ``Authorization: AWS4-HMAC-SHA256 ...`` header and rejects a
request without one. Strict mode recomputes the signature over the request as received, with the
configured secret: the canonical request (method, URI-encoded path, the query decoded and encoded
again and sorted, the headers named in ``SignedHeaders`` with trimmed values, the SHA-256 of the
body or ``X-Amz-Content-SHA256``), the string to sign and the derived key, exactly as the signer does
(``botocore/auth.py: SigV4Auth``; the unit tests check this against AWS's SigV4 test suite and
botocore-signed requests, random ones included).

The failures are those AWS's front end answers with (403, except the malformed-header case), all of
which the load generator classifies as ``AccessDenied``.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from .config import AccessKey

SERVICE = "sagemaker"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 15 * 60  # SigV4: a request's X-Amz-Date must be within 15 minutes of the server's clock
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# the suffix AWS gives these error types
CORAL = ":http://internal.amazon.com/coral/com.amazon.coral.service/"


@dataclass(frozen=True)
class AuthError:
    code: str  # the error code AWS answers with (x-amzn-ErrorType)
    message: str
    status: int = 403


MISSING_TOKEN = AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
BAD_SIGNATURE = AuthError(
    "InvalidSignatureException",
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details.",
)
INVALID_TOKEN = AuthError(
    "UnrecognizedClientException", "The security token included in the request is invalid."
)
EXPIRED_TOKEN = AuthError("ExpiredTokenException", "The security token included in the request is expired")


def incomplete(message: str) -> AuthError:
    return AuthError("IncompleteSignatureException", message, 400)


@dataclass(frozen=True)
class Authorization:
    key_id: str
    date: str  # yyyymmdd
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")


def parse(value: str) -> Authorization | AuthError:
    """The parts of an ``Authorization`` header, or the error AWS gives a malformed one."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return incomplete(
            f"Unsupported authorization type '{algorithm}': SageMaker accepts {ALGORITHM} only."
        )
    fields = dict(_FIELD.findall(rest))
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        return incomplete(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value}"
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        return incomplete(
            f"Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/aws4_request, got '{fields['Credential']}'"
        )
    key_id, date, region, service, _ = scope
    return Authorization(
        key_id, date, region, service, tuple(fields["SignedHeaders"].split(";")), fields["Signature"]
    )


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _canonical_path(path: str) -> str:
    """The path as the signer canonicalises it: dot segments and empty segments removed, then
    URI-encoded once more (the request line carries it already encoded once)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")
    return quote(normalized, safe="/~")


def _query_component(text: str) -> str:
    # Decoded the way AWS's front ends decode a query (form encoding: a raw "+" is a space, "%2B" a
    # plus; an invalid escape stays literal), then encoded as SigV4 wants: every byte but the
    # unreserved ones as %XY. A client that sent "a+b" for a plus signed something else: 403, as on AWS.
    return quote(unquote_to_bytes(text.replace("+", " ")), safe="-_.~")


def _canonical_query(query: str) -> str:
    """Each name and value decoded and encoded again, the pairs sorted by name, then value; a pair
    without "=" has an empty value, an empty pair (``&&``) is no pair."""
    if not query:
        return ""
    pairs = sorted(
        (_query_component(name), _query_component(value))
        for name, _, value in (pair.partition("=") for pair in query.split("&") if pair)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    method: str, path: str, query: str, headers: dict[str, str], signed: tuple[str, ...], payload_hash: str
) -> str:
    lines = [f"{name}:{' '.join(headers.get(name, '').split())}" for name in signed]
    return "\n".join(
        [
            method.upper(),
            _canonical_path(path),
            _canonical_query(query),
            "\n".join(lines) + "\n",
            ";".join(signed),
            payload_hash,
        ]
    )


def signature(secret: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), amz_date[:8]), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _amz_time(amz_date: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


def _compact(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


class Verifier:
    """Strict SigV4: the signature, scope, clock and credentials of every request."""

    def __init__(self, keys: dict[str, AccessKey], region: str, service: str = SERVICE, clock=time.time):
        self.keys = keys
        self.region = region
        self.service = service
        self.clock = clock

    def verify(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> AuthError | None:
        """``headers``: lower-case names. Returns None when the request is authentic."""
        value = headers.get("authorization")
        if not value:
            return MISSING_TOKEN
        auth = parse(value)
        if isinstance(auth, AuthError):
            return auth
        amz_date = headers.get("x-amz-date", "")
        if not amz_date:
            return incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                f"Authorization={value}"
            )
        signed_at = _amz_time(amz_date)
        if signed_at is None:
            return incomplete(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            )
        if "host" not in auth.signed_headers:
            return incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        now = self.clock()
        if signed_at < now - MAX_SKEW_S:
            return AuthError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than "
                f"{_compact(now - MAX_SKEW_S)} ({_compact(now)} - 15 min.)",
            )
        if signed_at > now + MAX_SKEW_S:
            return AuthError(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than "
                f"{_compact(now + MAX_SKEW_S)} ({_compact(now)} + 15 min.)",
            )
        key = self.keys.get(auth.key_id)
        token = headers.get("x-amz-security-token")
        if key is None or (key.session_token or None) != (token or None):
            return INVALID_TOKEN
        if key.expires_at is not None and now >= key.expires_at:
            return EXPIRED_TOKEN
        if auth.date != amz_date[:8]:
            return AuthError(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from "
                f"ISO-8601 version of date from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if auth.region != self.region:
            return AuthError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{auth.region}'. ",
            )
        if auth.service != self.service:
            return AuthError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{self.service}'. ",
            )
        payload_hash = headers.get("x-amz-content-sha256")
        actual_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        if payload_hash is None:
            payload_hash = actual_hash
        elif payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != actual_hash:
            return AuthError(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        canonical = canonical_request(method, path, query, headers, auth.signed_headers, payload_hash)
        expected = signature(key.secret, amz_date, auth.region, auth.service, canonical)
        if not hmac.compare_digest(expected, auth.signature):
            return BAD_SIGNATURE
        return None


def check_present(headers: dict[str, str]) -> AuthError | None:
    """Default mode: a well-formed SigV4 Authorization header, not checked further."""
    value = headers.get("authorization")
    if not value:
        return MISSING_TOKEN
    auth = parse(value)
    return auth if isinstance(auth, AuthError) else None
