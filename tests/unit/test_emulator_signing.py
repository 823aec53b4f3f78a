"""The strict verifier recomputes exactly what botocore's SigV4Auth signs: AWS's SigV4 test suite
(34 vectors), requests signed by botocore (odd paths, queries, repeated and padded headers, session
tokens) verify, and any change to what was signed does not; a query is read as AWS reads it (a raw
"+" is a space). Random requests against botocore: ``test_sigv4_against_botocore.py``."""

from __future__ import annotations

import datetime as dt
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from testkit import sigv4_suite
from testkit.sigv4_suite import CASES

from smload.emulator import sigv4
from smload.emulator.config import AccessKey

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)
KEY, SECRET, TOKEN = "AKIDUNITTEST00000001", "unit/test/secret+key=", "session/token+value=="


def signed(
    url: str,
    body: bytes = b"{}",
    headers: dict | None = None,
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "sagemaker",
) -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(KEY, SECRET, token), service, region).add_auth(request)
    return request


def received(request: AWSRequest) -> tuple[str, str, dict[str, str]]:
    """What the server sees: the raw path and query, lower-case header names, host added by the client."""
    parts = urlsplit(request.url)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers.setdefault("host", parts.netloc)
    return parts.path, parts.query, headers


def verifier(**key) -> sigv4.Verifier:
    keys = {KEY: AccessKey(KEY, SECRET, **key)}
    return sigv4.Verifier(keys, "us-east-1", clock=lambda: NOW.replace(tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/endpoints/my-endpoint/invocations",
        "http://localhost/endpoints/a%20b/invocations-response-stream",
        "http://h/endpoints/x/invocations?b=2&a=1&a=0",
        "http://h/endpoints/x/./y/../invocations",
        "http://h/endpoints//double//slash/",
    ],
)
def test_botocore_signed_requests_verify(url):
    request = signed(
        url, headers={"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "  a   b  "}
    )
    path, query, headers = received(request)
    assert verifier().verify("POST", path, query, headers, request.body) is None


def test_session_token_and_expiry():
    request = signed("http://h/endpoints/x/invocations", token=TOKEN)
    path, query, headers = received(request)
    assert verifier(session_token=TOKEN).verify("POST", path, query, headers, request.body) is None
    assert (
        verifier(session_token="other").verify("POST", path, query, headers, request.body)
        == sigv4.INVALID_TOKEN
    )
    expired = verifier(session_token=TOKEN, expires_at=NOW.replace(tzinfo=dt.UTC).timestamp() - 1)
    assert expired.verify("POST", path, query, headers, request.body) == sigv4.EXPIRED_TOKEN
    long_term = verifier()  # a long-term key sent with a token
    assert long_term.verify("POST", path, query, headers, request.body) == sigv4.INVALID_TOKEN


@pytest.mark.parametrize("change", ["body", "path", "query", "signed header", "method", "service", "region"])
def test_any_change_to_what_was_signed_fails(change):
    url = "http://h/endpoints/x/invocations?a=1"
    request = signed(
        url,
        headers={"X-Amzn-SageMaker-Target-Variant": "v1"},
        service="execute-api" if change == "service" else "sagemaker",
        region="eu-west-1" if change == "region" else "us-east-1",
    )
    path, query, headers = received(request)
    body, method = request.body, "POST"
    if change == "body":
        body = b"{ }"
    elif change == "path":
        path = "/endpoints/y/invocations"
    elif change == "query":
        query = "a=2"
    elif change == "signed header":
        headers["x-amzn-sagemaker-target-variant"] = "v2"
    elif change == "method":
        method = "PUT"
    error = verifier().verify(method, path, query, headers, body)
    assert error is not None and error.code == "InvalidSignatureException"
    if change in ("service", "region"):
        assert "Credential should be scoped" in error.message
    else:
        assert error == sigv4.BAD_SIGNATURE


def test_malformed_headers_are_incomplete_signatures():
    assert sigv4.check_present({}) == sigv4.MISSING_TOKEN
    for value in [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=onlykey, SignedHeaders=host, Signature=00",
    ]:
        error = sigv4.check_present({"authorization": value})
        assert error is not None and error.code == "IncompleteSignatureException" and error.status == 400
    good = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=00"
    assert sigv4.check_present({"authorization": good}) is None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_suite_vector_verifies(case):
    """All 34, as the server hands them over: the raw path and query, the headers by lower-case
    name (a repeated one joined with ","), the suite's expected Authorization; one byte more of body
    and it does not verify."""
    headers: dict[str, str] = {}
    sent = list(case.sent_headers)
    if case.unsigned_token is not None:
        sent.append(("X-Amz-Security-Token", case.unsigned_token))
    for name, value in [*sent, ("Authorization", sigv4_suite.expected_authorization(case))]:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    key = AccessKey(
        sigv4_suite.ACCESS_KEY, sigv4_suite.SECRET_KEY, session_token=case.token or case.unsigned_token
    )
    verifier = sigv4.Verifier(
        {key.key_id: key}, sigv4_suite.REGION, sigv4_suite.SERVICE, clock=lambda: sigv4_suite.EPOCH
    )
    assert verifier.verify(case.method, case.path, case.raw_query, headers, case.body) is None
    assert (
        verifier.verify(case.method, case.path, case.raw_query, headers, case.body + b"!")
        == sigv4.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    "params, sent_query",
    [
        ({"q": "a b"}, "q=a+b"),  # a space sent in form encoding: the old verifier signed the raw "+"
        ({"q": "a b"}, "q=a%20b"),
        ({"q": "a+b"}, "q=a%2Bb"),
        ({"q": "a+b"}, "q=a%2bb"),  # lower-case hex
        ({"q": "~x"}, "q=%7Ex"),  # an unreserved character needlessly escaped
        ({"q": "a:b/c"}, "q=a:b/c"),  # reserved characters sent raw
        ({"k y": "1", "a": ""}, "k+y=1&a"),  # a name with a space; a name without "="
    ],
)
def test_query_is_read_as_aws_reads_it(params, sent_query):
    """Issue 16, item 10: botocore signs the parameters' values (encoded, sorted); however a client
    writes them in the URL, AWS decodes them first (form encoding: "+" is a space) and so do we."""
    request = AWSRequest(method="POST", url="http://h/endpoints/x/invocations", data=b"{}", params=params)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
    path, _, headers = received(request)
    assert verifier().verify("POST", path, sent_query, headers, request.body) is None


def test_a_raw_plus_is_not_a_plus():
    """A value with a plus is signed as %2B; sent as a raw "+" it reads as a space: refused, as AWS does."""
    request = signed("http://h/endpoints/x/invocations?q=a%2Bb")
    path, query, headers = received(request)
    assert verifier().verify("POST", path, query, headers, request.body) is None
    assert verifier().verify("POST", path, "q=a+b", headers, request.body) == sigv4.BAD_SIGNATURE
