"""Bearer tokens for SageMaker's OpenAI-compatible route, minted from AWS credentials.

A token is built the way the SageMaker Python SDK's token generator builds it
(``sagemaker.core.token_generator``, the same construction as Bedrock's short-term API keys): a
SigV4 *presigned* request ``POST https://sagemaker.amazonaws.com/?Action=CallWithBearerToken``
(service ``sagemaker``, the endpoint's region, ``X-Amz-Expires`` = its lifetime, at most 12 hours;
temporary credentials add ``X-Amz-Security-Token``), the URL without its scheme, ``&Version=1``
appended, base64-encoded, prefixed with ``sagemaker-api-key-``. It is minted locally (no network
call) and sent as ``Authorization: Bearer <token>``; AWS checks the signature, the expiry and the
embedded credentials, and the caller needs ``sagemaker:CallWithBearerToken`` and
``sagemaker:InvokeEndpoint``.

Pure botocore on purpose: the load generator and the emulator's tests share this module, and it
must not import Locust.
"""

from __future__ import annotations

import base64
import threading
import time

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

PREFIX = "sagemaker-api-key-"
HOST = "sagemaker.amazonaws.com"
SERVICE = "sagemaker"
ACTION = "CallWithBearerToken"
VERSION = "&Version=1"
MAX_LIFETIME_S = 43200  # 12 hours: the longest token AWS accepts
REFRESH_BEFORE_S = 300  # a cached token is replaced this long before it expires


def mint(credentials, region: str, lifetime_s: int = MAX_LIFETIME_S) -> str:
    """One token from ``credentials`` (a botocore ``Credentials``, refreshable or not, or a frozen
    ``ReadOnlyCredentials``), valid ``lifetime_s`` seconds from now in ``region``."""
    if not region:
        raise ValueError("a region is needed to mint a bearer token")
    if not 1 <= lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"a bearer token lives 1 to {MAX_LIFETIME_S} seconds, not {lifetime_s}")
    if hasattr(credentials, "get_frozen_credentials"):
        # one consistent (key, secret, token) even if a refresh happens while we sign
        credentials = credentials.get_frozen_credentials()
    request = AWSRequest(
        method="POST", url=f"https://{HOST}/", headers={"host": HOST}, params={"Action": ACTION}
    )
    SigV4QueryAuth(credentials, SERVICE, region, expires=lifetime_s).add_auth(request)
    presigned = request.url.removeprefix("https://") + VERSION
    return PREFIX + base64.b64encode(presigned.encode()).decode()


class TokenSource:
    """The current token for a credentials object, minted again before it expires and whenever the
    credentials themselves change (botocore refreshes temporary credentials ahead of their expiry;
    a token carries the credentials it was minted from, so it must follow them). Thread-safe."""

    def __init__(
        self,
        credentials,
        region: str,
        lifetime_s: int = MAX_LIFETIME_S,
        refresh_before_s: float = REFRESH_BEFORE_S,
        clock=time.time,
    ) -> None:
        if lifetime_s <= refresh_before_s:
            raise ValueError("the token lifetime must exceed the refresh margin")
        self._credentials = credentials
        self._region = region
        self._lifetime_s = lifetime_s
        self._refresh_before_s = refresh_before_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._minted_from = None
        self._renew_at = 0.0

    def token(self) -> str:
        credentials = self._credentials
        frozen = (
            credentials.get_frozen_credentials()
            if hasattr(credentials, "get_frozen_credentials")
            else credentials
        )
        now = self._clock()
        with self._lock:
            if self._token is None or now >= self._renew_at or frozen != self._minted_from:
                self._token = mint(frozen, self._region, self._lifetime_s)
                self._minted_from = frozen
                self._renew_at = now + self._lifetime_s - self._refresh_before_s
            return self._token

    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return "Bearer " + self.token()
