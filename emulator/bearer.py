"""Checking the bearer tokens of the OpenAI-compatible route on the server side.

A token (``smload.invoke.bearer`` mints them as the SageMaker Python SDK does) is ``sagemaker-api-key-`` +
base64 of a SigV4 presigned URL, ``sagemaker.amazonaws.com/?Action=CallWithBearerToken&X-Amz-...
&X-Amz-Signature=...&Version=1``. Lenient mode (the default) accepts any non-empty token. Strict
mode (``--strict-sigv4``) verifies it as AWS does: the canonical request ``POST /`` with the query
(all parameters but ``X-Amz-Signature`` and the unsigned ``Version``), ``host`` signed, the empty
payload's hash; the credential scope (service ``sagemaker``, the emulator's region); the access
key and its session token (``X-Amz-Security-Token``) against the configured keys; and expiry:
``X-Amz-Date + X-Amz-Expires`` (at most 12 hours), and a temporary key's own expiry.

AWS documents no error texts for this route; the answers are those of Bedrock's short-term API
keys, which are built the same way: 403 ``{"Message": "Bearer Token has expired"}`` for an expired
token and 403 ``{"Message": "Authentication failed: Please make sure your API Key is valid."}`` for
any other invalid one (both classified ``AccessDenied`` by the load generator).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hmac
import math
import time
from urllib.parse import unquote

from . import sigv4
from .config import AccessKey
from .sigv4 import AuthError

PREFIX = "sagemaker-api-key-"
ACTION = "CallWithBearerToken"
MAX_EXPIRES_S = 43200

EXPIRED = AuthError("ExpiredTokenException", "Bearer Token has expired")
INVALID = AuthError("AccessDeniedException", "Authentication failed: Please make sure your API Key is valid.")


def check_present(token: str) -> AuthError | None:
    """Lenient mode: any non-empty token."""
    return None if token.strip() else INVALID


class Verifier:
    """Strict mode: a token must be one minted from a configured key, for this region, unexpired."""

    def __init__(self, keys: dict[str, AccessKey], region: str, clock=time.time) -> None:
        self.keys = keys
        self.region = region
        self.clock = clock
        self._valid: tuple[str, float] = ("", 0.0)  # the last token verified, and when it stops being valid

    def verify(self, token: str) -> AuthError | None:
        token = token.strip()
        known, until = self._valid
        if token == known:  # a client sends one token for many requests: verify it once, expire it on time
            return None if self.clock() < until else EXPIRED
        result = self._verify(token)
        return result

    def _verify(self, token: str) -> AuthError | None:
        if not token.startswith(PREFIX):
            return INVALID
        try:
            presigned = base64.b64decode(token[len(PREFIX) :], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return INVALID
        host, _, rest = presigned.partition("/")
        path, _, query = rest.partition("?")
        if not host or path or not query:
            return INVALID
        pairs = [pair.partition("=")[::2] for pair in query.split("&")]
        params = {k: unquote(v) for k, v in pairs}
        if (
            params.get("Action") != ACTION
            or params.get("X-Amz-Algorithm") != sigv4.ALGORITHM
            or params.get("X-Amz-SignedHeaders") != "host"
            or "X-Amz-Signature" not in params
        ):
            return INVALID
        scope = params.get("X-Amz-Credential", "").split("/")
        amz_date = params.get("X-Amz-Date", "")
        try:
            expires = int(params.get("X-Amz-Expires", ""))
        except ValueError:
            return INVALID
        signed_at = _amz_time(amz_date)
        if len(scope) != 5 or signed_at is None or not 0 < expires <= MAX_EXPIRES_S:
            return INVALID
        key_id, date, region, service, terminal = scope
        if (
            date != amz_date[:8]
            or region != self.region
            or service != sigv4.SERVICE
            or terminal != "aws4_request"
        ):
            return INVALID
        key = self.keys.get(key_id)
        if key is None or (key.session_token or None) != (params.get("X-Amz-Security-Token") or None):
            return INVALID
        now = self.clock()
        if now >= signed_at + expires or (key.expires_at is not None and now >= key.expires_at):
            return EXPIRED
        if signed_at > now + sigv4.MAX_SKEW_S:
            return INVALID  # signed in the future
        signed_query = "&".join(f"{k}={v}" for k, v in pairs if k not in ("X-Amz-Signature", "Version"))
        canonical = sigv4.canonical_request(
            "POST", "/", signed_query, {"host": host}, ("host",), sigv4.EMPTY_SHA256
        )
        expected = sigv4.signature(key.secret, amz_date, region, service, canonical)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return INVALID
        self._valid = (token, min(signed_at + expires, key.expires_at or math.inf))
        return None


def _amz_time(amz_date: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None
