"""Bearer tokens in strict mode: the ``openai`` SDK with tokens minted by ``smload.invoke.bearer`` from
long-term and from temporary credentials streams from the OpenAI-compatible route; a tampered token,
an expired one, one from unknown or expired credentials are refused with AWS's answer (403, counted
``AccessDenied``); a SigV4-signed request is accepted on the same route."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import time
from unittest import mock

import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from testkit.support import TEST_ACCESS_KEY, TEST_SECRET_KEY, start_emulator

from smload.invoke.bearer import PREFIX, TokenSource, mint

TEMP_KEY, TEMP_SECRET, TEMP_TOKEN = (
    "ASIASMLOADTEMP000001",
    "temporary/secret/key/000000000000000000000",
    "FwoGZXIvYXdzEXAMPLE+/==",
)
OLD_KEY, OLD_SECRET, OLD_TOKEN = (
    "ASIASMLOADEXPIRED001",
    "expired/secret/key/00000000000000000000000",
    "FwoGZXIvOLDTOKEN",
)
MESSAGES = [{"role": "user", "content": "abcdabcd"}]


@pytest.fixture
def strict(procs, tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text(f"""
endpoints:
  - name: chat
    variants: [{{name: v, llm: {{decode: {{base_ms: 1, per_seq_ms: 0.1}}}}}}]
region: us-east-1
strict_sigv4: true
access_keys:
  {TEST_ACCESS_KEY}: {TEST_SECRET_KEY}
  {TEMP_KEY}: {{secret: {TEMP_SECRET}, session_token: "{TEMP_TOKEN}", expires_at: {int(time.time()) + 3600}}}
  {OLD_KEY}: {{secret: {OLD_SECRET}, session_token: {OLD_TOKEN}, expires_at: 2020-01-01T00:00:00Z}}
""")
    return start_emulator(procs, "--config", str(config))


def client(emulator, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{emulator.url}/endpoints/chat/openai/v1", api_key=token, max_retries=0)


def stream_tokens(emulator, token: str) -> int:
    chunks = client(emulator, token).chat.completions.create(
        model="", messages=MESSAGES, max_tokens=5, stream=True
    )
    return sum(1 for c in chunks if c.choices and c.choices[0].delta.content)


def refused(emulator, token: str) -> openai.PermissionDeniedError:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client(emulator, token).chat.completions.create(model="", messages=MESSAGES, max_tokens=5)
    assert caught.value.status_code == 403
    return caught.value


def test_tokens_from_long_term_and_temporary_credentials_stream(strict):
    long_term = TokenSource(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "us-east-1")
    temporary = TokenSource(Credentials(TEMP_KEY, TEMP_SECRET, TEMP_TOKEN), "us-east-1", lifetime_s=900)
    assert stream_tokens(strict, long_term.token()) == 5
    assert stream_tokens(strict, temporary.token()) == 5
    assert stream_tokens(strict, long_term.token()) == 5  # the same token again (verified once, still valid)
    truth = strict.stats()["endpoints"]["chat"]["variants"]["v"]
    assert truth["status"] == {"200": 3} and truth["llm"]["output_tokens"] == 15


def test_tampered_expired_and_unknown_tokens_are_refused(strict):
    good = mint(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "us-east-1")
    presigned = base64.b64decode(good[len(PREFIX) :]).decode()
    tampered = (
        PREFIX
        + base64.b64encode(presigned.replace("X-Amz-Expires=43200", "X-Amz-Expires=43199").encode()).decode()
    )
    error = refused(strict, tampered)
    assert error.body == {"Message": "Authentication failed: Please make sure your API Key is valid."}
    assert error.response.headers["x-amzn-errortype"] == "AccessDeniedException"

    thirteen_hours_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=13)
    with mock.patch("botocore.auth.get_current_datetime", return_value=thirteen_hours_ago):
        expired = mint(
            Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "us-east-1"
        )  # 12 hours: gone an hour ago
    assert refused(strict, expired).body == {"Message": "Bearer Token has expired"}
    old = mint(Credentials(OLD_KEY, OLD_SECRET, OLD_TOKEN), "us-east-1")  # its credentials expired in 2020
    assert refused(strict, old).body == {"Message": "Bearer Token has expired"}

    refused(strict, mint(Credentials("AKIDNOTCONFIGURED001", TEST_SECRET_KEY), "us-east-1"))
    refused(
        strict, mint(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "eu-west-1")
    )  # another region's scope
    refused(strict, mint(Credentials(TEMP_KEY, TEMP_SECRET), "us-east-1"))  # temporary key without its token
    refused(strict, "not-a-sagemaker-token")
    errors = strict.stats()["endpoints"]["chat"]["variants"]["unknown"]["errors"]
    assert errors == {"AccessDenied": 7}


def test_sigv4_signed_request_and_missing_authorization_on_the_route(strict):
    body = json.dumps({"messages": MESSAGES, "max_tokens": 3}).encode()
    request = AWSRequest(
        method="POST",
        url=f"{strict.url}/endpoints/chat/openai/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "sagemaker", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=10)
    conn.request(
        "POST", "/endpoints/chat/openai/v1/chat/completions", body=body, headers=dict(request.headers.items())
    )
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["usage"]["completion_tokens"] == 3
    conn.request("POST", "/endpoints/chat/openai/v1/chat/completions", body=body)
    response = conn.getresponse()
    assert response.status == 403 and response.getheader("x-amzn-ErrorType").startswith(
        "MissingAuthenticationToken"
    )
    response.read()
    conn.close()
