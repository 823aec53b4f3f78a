"""Region, endpoint URL and credentials the way the AWS SDKs find them (botocore), plus
``--role-arn`` through botocore's own refreshing assume-role credentials."""

from __future__ import annotations

import os
import socket
from typing import Any

import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ProfileNotFound

from smload.usage import UsageError

SERVICE = "sagemaker-runtime"


def session() -> botocore.session.Session:
    """A botocore session whose profile exists: botocore would raise ProfileNotFound from whichever
    call first reads the config (the region, the credentials), as a traceback."""
    sess = botocore.session.Session()
    try:
        sess.get_scoped_config()
    except ProfileNotFound as err:
        raise UsageError(
            "AWS_PROFILE", f"{err}: set AWS_PROFILE to one of `aws configure list-profiles`, or unset it"
        ) from None
    return sess


def default_region(sess: botocore.session.Session) -> str | None:
    """botocore's chain (AWS_DEFAULT_REGION, the profile), then AWS_REGION as the newer SDKs read it."""
    return sess.get_config_variable("region") or os.environ.get("AWS_REGION") or None


def default_endpoint_url(sess: botocore.session.Session, region: str) -> str:
    """The URL botocore would call: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME / AWS_ENDPOINT_URL / the
    profile's ``endpoint_url``, else the partition's runtime endpoint for ``region``."""
    # dummy keys: resolving the endpoint must not go looking for credentials (IMDS timeouts)
    client = sess.create_client(
        SERVICE, region_name=region, aws_access_key_id="unused", aws_secret_access_key="unused"
    )
    return client.meta.endpoint_url


class _Fixed(CredentialProvider):
    """Puts given credentials first in a session's chain, so that a boto3 client uses them too."""

    METHOD = CANONICAL_NAME = "smload-role"

    def __init__(self, credentials: Any):
        super().__init__()
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials


def credentials(sess: botocore.session.Session, region: str, role_arn: str | None = None) -> Any:
    """Credentials with ``get_frozen_credentials()``, refreshing themselves when they are temporary
    (SSO, web identity, ``credential_process``, container/instance roles, an assumed role).
    With ``role_arn``, the session is left using the assumed role for any client it creates."""
    resolver = sess.get_component("credential_provider")
    try:
        found = resolver.load_credentials()
    except Exception as err:  # botocore raises a dozen kinds (bad profile, failing process, SSO expired)
        raise UsageError("credentials", f"cannot load AWS credentials: {err}") from None
    if found is None:
        raise UsageError(
            "credentials",
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run where an IAM role is available",
        )
    if not role_arn:
        return found

    def sts_client(service: str, **kwargs: Any) -> Any:
        return sess.create_client(service, region_name=region, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(
        sts_client, found, role_arn, extra_args={"RoleSessionName": f"smload-{socket.gethostname()}"[:64]}
    )
    assumed = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    resolver.insert_before("env", _Fixed(assumed))
    return assumed


class Sessions:
    """An Environment's botocore sessions with their credentials, resolved once per (region, role):
    the load test's users, DescribeEndpoint and the exporter's CloudWatch poller all use these."""

    _ATTRIBUTE = "smload_aws"

    def __init__(self) -> None:
        self._resolved: dict[tuple[str, str | None], tuple[botocore.session.Session, Any]] = {}

    def get(self, region: str, role_arn: str | None = None) -> tuple[botocore.session.Session, Any]:
        """(session, credentials); raises UsageError when there are no credentials."""
        key = (region, role_arn)
        found = self._resolved.get(key)
        if found is None:
            sess = session()
            found = self._resolved[key] = (sess, credentials(sess, region, role_arn))
        return found

    @classmethod
    def of(cls, environment: Any) -> Sessions:
        sessions = getattr(environment, cls._ATTRIBUTE, None)
        if sessions is None:
            sessions = cls()
            setattr(environment, cls._ATTRIBUTE, sessions)
        return sessions
