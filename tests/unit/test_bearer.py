"""smload.invoke.bearer mints tokens as the SageMaker Python SDK does, and the emulator's strict verifier
accepts exactly those: botocore's own presigner is the reference on both sides."""

from __future__ import annotations

import base64
import datetime as dt
from unittest import mock
from urllib.parse import parse_qs

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from smload.emulator import bearer as server
from smload.emulator.config import AccessKey
from smload.invoke import bearer

KEY, SECRET, TOKEN = "AKIDBEARERTEST000001", "bearer/secret/0000000000000000000000000", "session/token+=="


def decoded(token: str) -> tuple[str, dict[str, str]]:
    assert token.startswith("sagemaker-api-key-")
    presigned = base64.b64decode(token.removeprefix("sagemaker-api-key-")).decode()
    host_path, _, query = presigned.partition("?")
    return host_path, {k: v[0] for k, v in parse_qs(query).items()}


def test_token_layout_is_the_sdks():
    host_path, params = decoded(bearer.mint(Credentials(KEY, SECRET, TOKEN), "eu-west-1", lifetime_s=900))
    assert host_path == "sagemaker.amazonaws.com/"
    assert params["Action"] == "CallWithBearerToken" and params["Version"] == "1"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and params["X-Amz-SignedHeaders"] == "host"
    assert params["X-Amz-Credential"].startswith(f"{KEY}/") and params["X-Amz-Credential"].endswith(
        "/eu-west-1/sagemaker/aws4_request"
    )
    assert params["X-Amz-Expires"] == "900" and params["X-Amz-Security-Token"] == TOKEN
    assert "X-Amz-Security-Token" not in decoded(bearer.mint(Credentials(KEY, SECRET), "eu-west-1"))[1]
    with pytest.raises(ValueError):
        bearer.mint(Credentials(KEY, SECRET), "eu-west-1", lifetime_s=43201)


def test_strict_verifier_accepts_minted_tokens_and_refuses_changed_ones():
    now = dt.datetime.now(dt.UTC).timestamp()
    clock = [now]
    verifier = server.Verifier({KEY: AccessKey(KEY, SECRET, TOKEN)}, "us-east-1", clock=lambda: clock[0])
    token = bearer.mint(Credentials(KEY, SECRET, TOKEN), "us-east-1", lifetime_s=600)
    assert verifier.verify(token) is None
    raw = base64.b64decode(token.removeprefix(bearer.PREFIX)).decode()
    for change in (
        ("X-Amz-Expires=600", "X-Amz-Expires=601"),
        ("sagemaker.amazonaws.com", "sagemaker.amazonaws.org"),
        ("Action=CallWithBearerToken", "Action=InvokeEndpoint"),
    ):
        forged = bearer.PREFIX + base64.b64encode(raw.replace(*change).encode()).decode()
        assert verifier.verify(forged) is server.INVALID, change
    clock[0] = now + 601
    assert verifier.verify(token) is server.EXPIRED  # the cached verdict expires on time too
    assert verifier.verify(bearer.mint(Credentials(KEY, SECRET, "other"), "us-east-1")) is server.INVALID


def test_token_source_reuses_a_token_until_shortly_before_it_expires():
    clock = [1_800_000_000.0]  # one clock for the source and for botocore's signing time
    signing_time = mock.patch(
        "botocore.auth.get_current_datetime",
        side_effect=lambda: dt.datetime.fromtimestamp(clock[0], dt.UTC).replace(tzinfo=None),
    )
    source = bearer.TokenSource(
        Credentials(KEY, SECRET), "us-east-1", lifetime_s=3600, refresh_before_s=300, clock=lambda: clock[0]
    )
    with signing_time:
        first = source.token()
        clock[0] += 3299
        assert source.token() == first
        clock[0] += 1
        second = source.token()
    assert source.authorization() == "Bearer " + second
    assert decoded(first)[1]["X-Amz-Date"] == "20270115T080000Z"
    assert decoded(second)[1]["X-Amz-Date"] == "20270115T085500Z"  # minted again 5 minutes before expiry


def test_token_source_follows_refreshed_credentials():
    keys = iter(f"ASIAROTATING{n:08d}" for n in range(100))

    def refresh():  # temporary credentials that botocore must refresh at once (expiring in 1 minute)
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
        return {"access_key": next(keys), "secret_key": SECRET, "token": TOKEN, "expiry_time": expiry}

    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    source = bearer.TokenSource(credentials, "us-east-1")
    first, second = source.token(), source.token()
    assert first != second
    assert (
        decoded(first)[1]["X-Amz-Credential"].split("/")[0]
        != decoded(second)[1]["X-Amz-Credential"].split("/")[0]
    )
