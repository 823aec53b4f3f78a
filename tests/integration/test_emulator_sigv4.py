"""Strict SigV4 against a real emulator: boto3-signed requests pass (long-term and temporary keys),
random ones too (queries, repeated headers, tokens; sent over HTTP and counted exactly), and so do
the load generator's Signer's with a header that sorts between the date and the token; a wrong
secret, a tampered body, a stale date, another region, an unknown key, a missing or wrong session
token and an expired one each fail with AWS's error, and every failure is counted as
``AccessDenied``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import http.client
import socket
import time
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import sigv4_random
from testkit.support import TEST_ACCESS_KEY, TEST_SECRET_KEY, runtime_client, start_emulator

from smload.invoke.sigv4 import Signer

TEMP_KEY, TEMP_SECRET, TEMP_TOKEN = (
    "ASIASMLOADTEMP000001",
    "temporary/secret/key/000000000000000000000",
    "FwoGZXIvYXdzEXAMPLETOKEN+/==",
)
OLD_KEY, OLD_SECRET, OLD_TOKEN = (
    "ASIASMLOADEXPIRED001",
    "expired/secret/key/00000000000000000000000",
    "FwoGZXIvOLDTOKEN",
)


@pytest.fixture
def strict(procs, tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text(f"""
endpoints:
  - name: secure
    variants: [{{name: v, latency: 1}}]
region: us-east-1
strict_sigv4: true
access_keys:
  {TEST_ACCESS_KEY}: {TEST_SECRET_KEY}
  {TEMP_KEY}: {{secret: {TEMP_SECRET}, session_token: "{TEMP_TOKEN}", expires_at: {int(time.time()) + 3600}}}
  {OLD_KEY}: {{secret: {OLD_SECRET}, session_token: {OLD_TOKEN}, expires_at: 2020-01-01T00:00:00Z}}
""")
    return start_emulator(procs, "--config", str(config))


def access_denied(emulator) -> int:
    return (
        emulator.stats()["endpoints"]["secure"]["variants"]
        .get("unknown", {})
        .get("errors", {})
        .get("AccessDenied", 0)
    )


def expect_error(call, code: str, status: int, message: str = "") -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert message in error["Error"]["Message"]


def test_signed_requests_pass(strict):
    long_term = runtime_client(strict.url)
    assert long_term.invoke_endpoint(EndpointName="secure", Body=b"{}")["Body"].read() == b"{}"
    temporary = runtime_client(
        strict.url,
        aws_access_key_id=TEMP_KEY,
        aws_secret_access_key=TEMP_SECRET,
        aws_session_token=TEMP_TOKEN,
    )
    assert (
        temporary.invoke_endpoint(EndpointName="secure", Body=b"[1]", TargetVariant="v")["Body"].read()
        == b"[1]"
    )
    stream = long_term.invoke_endpoint_with_response_stream(EndpointName="secure", Body=b"abcdef")
    assert b"".join(e["PayloadPart"]["Bytes"] for e in stream["Body"]) == b"abcdef"
    assert strict.stats()["endpoints"]["secure"]["variants"]["v"]["status"] == {"200": 3}


def test_wrong_secret(strict):
    client = runtime_client(strict.url, aws_secret_access_key="not/the/secret")
    expect_error(
        lambda: client.invoke_endpoint(EndpointName="secure", Body=b"{}"),
        "InvalidSignatureException",
        403,
        "The request signature we calculated does not match",
    )
    assert access_denied(strict) == 1


def test_unknown_key_and_session_token_mismatches(strict):
    calls = [
        runtime_client(strict.url, aws_access_key_id="AKIDNOTCONFIGURED001"),
        runtime_client(strict.url, aws_access_key_id=TEMP_KEY, aws_secret_access_key=TEMP_SECRET),  # no token
        runtime_client(
            strict.url,
            aws_access_key_id=TEMP_KEY,
            aws_secret_access_key=TEMP_SECRET,
            aws_session_token="other",
        ),
    ]
    for client in calls:
        expect_error(
            lambda c=client: c.invoke_endpoint(EndpointName="secure", Body=b"{}"),
            "UnrecognizedClientException",
            403,
            "The security token included in the request is invalid",
        )
    assert access_denied(strict) == 3


def test_expired_session_token(strict):
    client = runtime_client(
        strict.url, aws_access_key_id=OLD_KEY, aws_secret_access_key=OLD_SECRET, aws_session_token=OLD_TOKEN
    )
    expect_error(
        lambda: client.invoke_endpoint(EndpointName="secure", Body=b"{}"),
        "ExpiredTokenException",
        403,
        "expired",
    )


def test_another_region(strict):
    client = runtime_client(strict.url, region_name="eu-west-1")
    expect_error(
        lambda: client.invoke_endpoint(EndpointName="secure", Body=b"{}"),
        "InvalidSignatureException",
        403,
        "Credential should be scoped to a valid region, not 'eu-west-1'",
    )


def _signed(url: str, body: bytes, when: dt.datetime | None = None) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"{url}/endpoints/secure/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    signer = SigV4Auth(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "sagemaker", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return request


def _send(port: int, request: AWSRequest, body: bytes) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {k: v for k, v in request.headers.items()}
    conn.request("POST", "/endpoints/secure/invocations", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_signed_by_hand_passes_and_tampered_body_fails(strict):
    body = b'{"amount": 100}'
    status, _, answer = _send(strict.port, _signed(strict.url, body), body)
    assert (status, answer) == (200, body)
    status, headers, answer = _send(strict.port, _signed(strict.url, body), b'{"amount": 999}')
    assert status == 403
    assert headers["x-amzn-errortype"].split(":")[0] == "InvalidSignatureException"
    assert access_denied(strict) == 1


@pytest.mark.parametrize("minutes, message", [(-20, "Signature expired"), (20, "Signature not yet current")])
def test_stale_or_future_date(strict, minutes, message):
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    body = b"{}"
    status, headers, answer = _send(strict.port, _signed(strict.url, body, when), body)
    assert status == 403
    assert headers["x-amzn-errortype"].split(":")[0] == "InvalidSignatureException"
    assert message.encode() in answer
    # ... and 14 minutes off is still inside AWS's 15-minute window
    near = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=14 if minutes > 0 else -14)
    assert _send(strict.port, _signed(strict.url, body, near), body)[0] == 200


def test_missing_authorization(strict):
    conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=10)
    conn.request("POST", "/endpoints/secure/invocations", body=b"{}")
    response = conn.getresponse()
    assert response.status == 403
    assert response.getheader("x-amzn-ErrorType").startswith("MissingAuthenticationTokenException")
    assert access_denied(strict) == 1


def _served(emulator) -> dict:
    return emulator.stats()["endpoints"]["secure"]["variants"].get("v", {}).get("status", {})


def test_signer_with_a_header_between_date_and_token_passes(strict):
    """Issue 16, item 6, as seen: the load generator's signer with a session token and X-Amz-Meta-*
    (it sorts between x-amz-date and x-amz-security-token): 200 (the old signer's was a 403)."""
    body = b'{"inputs": [1]}'
    signer = Signer(
        "us-east-1",
        "POST",
        f"127.0.0.1:{strict.port}",
        "/endpoints/secure/invocations",
        [("X-Amz-Meta-Owner", "team a"), ("X-Amz-Request-Payer", "requester")],
    )
    head = signer.sign(
        TEMP_KEY, TEMP_SECRET, TEMP_TOKEN, "application/json", hashlib.sha256(body).hexdigest(), len(body)
    ).head
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.read()) == (200, body)
    assert _served(strict) == {"200": 1}


def test_query_plus_is_a_space_over_http(strict):
    """Issue 16, item 10: botocore signs a value "a b"; a client writes it "a+b" in the URL: 200
    (the old verifier canonicalised the "+" raw: 403). "a+b" signed as "a%2Bb" and sent as "a+b": 403."""
    for params, sent, status in [
        ({"q": "a b"}, "q=a+b", 200),
        ({"q": "a+b"}, "q=a+b", 403),
        ({"q": "a+b"}, "q=a%2Bb", 200),
    ]:
        request = AWSRequest(
            method="POST",
            url=f"{strict.url}/endpoints/secure/invocations",
            data=b"{}",
            params=params,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "sagemaker", "us-east-1").add_auth(request)
        conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=10)
        conn.request(
            "POST", f"/endpoints/secure/invocations?{sent}", body=b"{}", headers=dict(request.headers)
        )
        response = conn.getresponse()
        response.read()
        assert response.status == status, (params, sent)
    assert _served(strict) == {"200": 2}
    assert access_denied(strict) == 1


_HTTP_HEADERS = st.lists(
    st.tuples(
        sigv4_random.header_name.map(lambda n: f"X-{n}" if n.lower().startswith("x-amzn-") else n),
        sigv4_random.header_value,
    ),
    max_size=6,
)


def test_random_botocore_signed_requests_pass_over_http(strict):
    """300 botocore-signed requests with random queries, repeated headers and session tokens (or
    none), sent over one keep-alive connection to the strict emulator: every one answered 200, and
    the emulator counted exactly those."""
    conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=10)
    sent = 0

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sigv4_random.random_requests(), _HTTP_HEADERS, st.booleans())
    def check(request, headers, temporary):
        nonlocal sent
        key, secret, token = (
            (TEMP_KEY, TEMP_SECRET, TEMP_TOKEN) if temporary else (TEST_ACCESS_KEY, TEST_SECRET_KEY, None)
        )
        request = dataclasses.replace(
            request,
            method="POST",
            scheme="http",
            host=f"127.0.0.1:{strict.port}",
            path="/endpoints/secure/invocations",
            headers=headers,
            access_key=key,
            secret_key=secret,
            token=token,
            region="us-east-1",
            service="sagemaker",
            when=int(time.time()),
        )
        signed = sigv4_random.botocore_signed(request)
        target = request.url.removeprefix(f"http://127.0.0.1:{strict.port}")
        conn.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{strict.port}")
        for name, value in signed.headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(request.body)))
        conn.endheaders(request.body)
        response = conn.getresponse()
        answer = response.read()
        sent += 1
        assert response.status == 200, (answer, signed.headers.items(), target)

    check()
    conn.close()
    assert sent >= 300
    assert _served(strict) == {"200": sent}
    assert access_denied(strict) == 0
