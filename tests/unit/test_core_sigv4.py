"""Our SigV4 signer (``smload.invoke.sigv4``): AWS's test suite (34 vectors) by its rules and
through the Signer, and byte for byte against botocore's ``SigV4Auth`` for every shape of request
we send, including the ones seen mis-signed (issue 16: a header sorting between the date and the
session token, an endpoint URL with a path prefix, repeated headers, queries). The random requests
against botocore are in ``test_sigv4_against_botocore.py``."""

import datetime
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from testkit import sigv4_suite
from testkit.sigv4_suite import CASES

from smload.invoke import sigv4
from smload.invoke.options import Settings, _endpoint_parts
from smload.invoke.payloads import Payload
from smload.invoke.sigv4 import Signer, host_header, signing_key
from smload.invoke.transport import signer_for

NOW = datetime.datetime(2026, 3, 1, 23, 59, 59, tzinfo=datetime.UTC)
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def botocore_authorization(url, headers, body, access, secret, token, region, method="POST"):
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # appended: repeated names stay repeated
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        botocore.auth.SigV4Auth(Credentials(access, secret, token), "sagemaker", region).add_auth(request)
    return request.headers["Authorization"], request.headers["X-Amz-Date"]


def parse_head(head):
    request_line, *lines = head.split("\r\n\r\n")[0].split("\r\n")
    return request_line, dict(line.split(": ", 1) for line in lines)


def header_lines(head):
    return [tuple(line.split(": ", 1)) for line in head.split("\r\n\r\n")[0].split("\r\n")[1:]]


# --- AWS's test suite ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_suite_vector_by_the_rules(case):
    """All 34: the canonical request of the request as given, and its Authorization header."""
    canonical = sigv4.canonical_request(
        case.method, case.path, case.raw_query, case.sent_headers, case.payload_sha256
    )
    assert canonical == case.canonical_request
    signed = sigv4.canonical_headers(case.sent_headers)[1]
    value = sigv4.authorization(
        sigv4_suite.ACCESS_KEY,
        signed,
        sigv4.signature(
            sigv4_suite.SECRET_KEY, sigv4_suite.AMZ_DATE, sigv4_suite.REGION, sigv4_suite.SERVICE, canonical
        ),
        sigv4_suite.AMZ_DATE,
        sigv4_suite.REGION,
        sigv4_suite.SERVICE,
    )
    assert value == sigv4_suite.expected_authorization(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.valid_http], ids=lambda c: c.name)
def test_suite_vector_through_the_signer(case):
    """The 32 whose request line is valid HTTP, through the load generator's Signer (its templates):
    the same Authorization, and the request line and headers sent as given."""
    content_type = dict(case.headers).get("Content-Type")
    # a folded value is sent unfolded (a sender must not fold: RFC 9112); it signs the same
    own = [(name, " ".join(value.split("\n"))) for name, value in case.headers if name != "Content-Type"]
    signer = Signer(
        sigv4_suite.REGION,
        case.method,
        sigv4_suite.HOST,
        case.path,
        own,
        service=sigv4_suite.SERVICE,
        query=case.raw_query,
    )
    head = signer.sign(
        sigv4_suite.ACCESS_KEY,
        sigv4_suite.SECRET_KEY,
        case.token,
        content_type,
        case.payload_sha256,
        len(case.body),
        now=sigv4_suite.EPOCH,
    ).head
    request_line, sent = parse_head(head)
    if case.target.isascii():
        assert request_line == f"{case.method} {case.target} HTTP/1.1"
    else:  # raw UTF-8 in the query goes out percent-encoded; a query is decoded before it is signed
        assert request_line == f"{case.method} /?%E1%88%B4=bar HTTP/1.1"
    assert sent["Authorization"] == sigv4_suite.expected_authorization(case)
    assert sent["X-Amz-Date"] == sigv4_suite.AMZ_DATE
    assert [line for line in header_lines(head) if line[0] in dict(own)] == own


def test_a_request_line_that_is_not_valid_http_is_encoded_and_signed_as_sent():
    """The two vectors with a raw space or raw UTF-8 in the path: the Signer percent-encodes them
    and signs what it sends, as a server that receives the encoded path computes it (botocore too)."""
    head = (
        Signer("us-east-1", "GET", "h", "/example space/\u1234")
        .sign(KEY, SECRET, None, None, sigv4.EMPTY_SHA256, 0, now=NOW.timestamp())
        .head
    )
    request_line, sent = parse_head(head)
    assert request_line == "GET /example%20space/%E1%88%B4 HTTP/1.1"
    expected, _ = botocore_authorization(
        "http://h/example%20space/%E1%88%B4", [], b"", KEY, SECRET, None, "us-east-1", method="GET"
    )
    assert sent["Authorization"] == expected


# --- the shapes of InvokeEndpoint requests we send ------------------------------------------------

CASES_INVOKE = [
    # scheme, host, port, content type, extra headers, token
    ("https", "runtime.sagemaker.eu-west-1.amazonaws.com", 443, "application/json", [], None),
    ("http", "127.0.0.1", 8080, "application/json", [("Accept", "application/json")], "session/token+=="),
    (
        "http",
        "localhost",
        80,
        "text/csv",
        [
            ("X-Amzn-SageMaker-Target-Variant", "variant-b"),
            ("X-Amzn-SageMaker-Custom-Attributes", "a=1;  b=2"),
            ("Accept", "text/csv"),
        ],
        "tok",
    ),
    (
        "https",
        "example.com",
        8443,
        None,
        [
            ("X-Amzn-SageMaker-Target-Model", "model.tar.gz"),
            ("X-Amzn-SageMaker-Inference-Component", "ic-1"),
            ("X-Amzn-SageMaker-Target-Container-Hostname", "c1"),
        ],
        None,
    ),
    # issue 16, item 6: headers that sort between x-amz-date and x-amz-security-token, with a token
    (
        "https",
        "example.com",
        443,
        "application/json",
        [("X-Amz-Meta-Owner", "team a"), ("X-Amz-Request-Payer", "requester")],
        "FwoG/token+==",
    ),
    ("http", "127.0.0.1", 8080, None, [("x-amz-expected-bucket-owner", "123456789012")], "t"),
    # repeated headers: sent and signed in order, one canonical line
    (
        "http",
        "127.0.0.1",
        8080,
        "application/json",
        [("Accept", "application/json"), ("Accept", "text/csv"), ("accept", "  */*  ")],
        None,
    ),
]


@pytest.mark.parametrize("scheme,host,port,content_type,headers,token", CASES_INVOKE)
def test_authorization_matches_botocore(scheme, host, port, content_type, headers, token):
    body = b'{"inputs": [1, 2, 3]}'
    payload = Payload.of(body, content_type or "")
    host_value = host_header(scheme, host, port)
    path = "/endpoints/my-endpoint-1/invocations"
    signer = Signer("eu-west-1", "POST", host_value, path, headers)
    head = signer.sign(KEY, SECRET, token, content_type, payload.sha256, len(body), now=NOW.timestamp()).head
    request_line, sent = parse_head(head)
    assert request_line == f"POST {path} HTTP/1.1"
    assert sent["Host"] == host_value
    assert sent["Content-Length"] == str(len(body))
    if content_type:
        assert sent["Content-Type"] == content_type
    if token:
        assert sent["X-Amz-Security-Token"] == token
    own = [line for line in header_lines(head) if line[0].lower() in {name.lower() for name, _ in headers}]
    assert own == headers  # each sent as given, repeated ones too
    url = f"{scheme}://{host_value}{path}"
    reference = [
        (k, v)
        for k, v in header_lines(head)
        if k not in ("Authorization", "X-Amz-Date", "Content-Length", "Host", "X-Amz-Security-Token")
    ]
    authorization, date = botocore_authorization(url, reference, body, KEY, SECRET, token, "eu-west-1")
    assert sent["X-Amz-Date"] == date == "20260301T235959Z"
    assert sent["Authorization"] == authorization


def test_session_token_with_a_header_between_date_and_token_matches_botocore():
    """Issue 16, item 6, as seen: X-Amz-Meta-* with a session token. The old signer dropped the
    header from the canonical request and wrote the token line twice."""
    signer = Signer("us-east-1", "POST", "h", "/p", [("X-Amz-Meta-Owner", "me")])
    sent = parse_head(
        signer.sign(KEY, SECRET, "TOKEN", None, sigv4.EMPTY_SHA256, 0, now=NOW.timestamp()).head
    )[1]
    expected, _ = botocore_authorization(
        "http://h/p", [("X-Amz-Meta-Owner", "me")], b"", KEY, SECRET, "TOKEN", "us-east-1"
    )
    assert sent["Authorization"] == expected
    assert "SignedHeaders=host;x-amz-date;x-amz-meta-owner;x-amz-security-token," in expected


# --- issue 16, item 7: an endpoint URL with a path prefix, as boto3 signs it -----------------------

PREFIXES = [
    "/pre%2Dfix",
    "/a:b",
    "/a+b",
    "/a//b",
    "/v1/",
    "/x%7Ey",
    "/%E1%88%B4",
    "/a/./b/../c",
    "/(x)!$&'*,;=@",
]


@pytest.fixture
def no_aws_config(monkeypatch):
    for name in [name for name in __import__("os").environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/smload-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/smload-test-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Captured(Exception):
    pass


def boto3_request(endpoint_url: str, body: bytes, token: str | None, **kwargs) -> AWSRequest:
    """The request a real boto3 sagemaker-runtime client signs for ``invoke_endpoint``, captured
    just before it would be sent."""
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )
    seen = []

    def capture(request, **_):
        seen.append(request)
        raise Captured

    client.meta.events.register("before-send", capture)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        with pytest.raises(Captured):
            client.invoke_endpoint(
                EndpointName="my-endpoint", Body=body, ContentType="application/json", **kwargs
            )
    return seen[0]


def settings_for(endpoint_url: str, **headers: str) -> Settings:
    scheme, host, port, path_prefix = _endpoint_parts(endpoint_url)
    return Settings(
        endpoint_name="my-endpoint",
        region="eu-west-1",
        endpoint_url=endpoint_url,
        scheme=scheme,
        host=host,
        port=port,
        path_prefix=path_prefix,
        payloads=(),
        payload_order="cycle",
        payload_seed=None,
        content_type="application/json",
        request_timeout=10.0,
        connect_timeout=5.0,
        client="fast",
        role_arn=None,
        stream=False,
        header_values=tuple(headers.items()),
    )


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("token", [None, "FwoG/session+token=="])
def test_endpoint_url_with_a_path_prefix_signs_as_boto3(no_aws_config, prefix, token):
    """FastTransport's signer for ``--endpoint-url http://127.0.0.1:8080<prefix>`` against a real
    boto3 client's for the same URL: the same signature (the old signer signed the path as sent:
    no second encoding, no normalisation)."""
    url = f"http://127.0.0.1:8080{prefix}"
    body = b'{"inputs": [1]}'
    reference = boto3_request(url, body, token, TargetVariant="v1")
    settings = settings_for(url, target_variant="v1")
    payload = Payload.of(body, "application/json")
    head = (
        signer_for(settings)
        .sign(KEY, SECRET, token, "application/json", payload.sha256, len(body), now=NOW.timestamp())
        .head
    )
    sent = parse_head(head)[1]
    assert sent["Authorization"] == reference.headers["Authorization"].decode()
    assert sent["X-Amzn-SageMaker-Target-Variant"] == "v1"


# --- the signer's own mechanics --------------------------------------------------------------------


def test_query_is_sent_and_signed():
    signer = Signer("us-east-1", "GET", "h", "/p", query="b=2&a=x%2By&a=x+y&c")
    head = signer.sign(KEY, SECRET, None, None, sigv4.EMPTY_SHA256, 0, now=NOW.timestamp()).head
    assert head.startswith("GET /p?b=2&a=x%2By&a=x+y&c HTTP/1.1\r\n")
    canonical = sigv4.canonical_request(
        "GET", "/p", "b=2&a=x%2By&a=x+y&c", [("host", "h"), ("x-amz-date", "x")], ""
    )
    assert canonical.split("\n")[2] == "a=x%20y&a=x%2By&b=2&c="  # a raw "+" is a space, as a server reads it


@pytest.mark.parametrize(
    "headers",
    [
        [("Host", "other")],
        [("X-Amz-Date", "x")],
        [("content-type", "a/b")],
        [("Authorization", "x")],
        [("X-Amz-Security-Token", "t")],
        [("Bad Name", "v")],
        [("X", "a\r\nInjected: 1")],
        [("X", "a\nb")],
    ],
)
def test_headers_the_signer_writes_or_that_cannot_be_sent_are_refused(headers):
    with pytest.raises(ValueError):
        Signer("us-east-1", "POST", "h", "/p", headers)


def test_a_token_that_cannot_be_sent_is_refused():
    with pytest.raises(ValueError):
        Signer("us-east-1", "POST", "h", "/p").sign(KEY, SECRET, "tok\r\nX: 1", None, sigv4.EMPTY_SHA256, 0)


def test_signing_key_cached_per_day_and_secret():
    signer = Signer("us-east-1", "POST", "h", "/p")
    a = signer.sign("AK", "s1", None, "application/json", "0" * 64, 1, now=NOW.timestamp()).head
    b = signer.sign("AK", "s1", None, "application/json", "0" * 64, 1, now=NOW.timestamp() + 1).head
    assert a != b  # the date changed at midnight: a new key, a new signature
    assert set(signer._keys) == {("s1", "20260301"), ("s1", "20260302")}
    assert signer._keys[("s1", "20260302")] == signing_key("s1", "20260302", "us-east-1")


def test_rotated_secret_signs_differently():
    signer = Signer("us-east-1", "POST", "h", "/p")
    one = signer.sign("AK", "s1", None, None, "0" * 64, 1, now=NOW.timestamp()).head
    two = signer.sign("AK", "s2", None, None, "0" * 64, 1, now=NOW.timestamp()).head
    assert parse_head(one)[1]["Authorization"] != parse_head(two)[1]["Authorization"]


def test_host_header():
    assert host_header("https", "a.example", 443) == "a.example"
    assert host_header("http", "a.example", 80) == "a.example"
    assert host_header("http", "127.0.0.1", 8080) == "127.0.0.1:8080"
    assert host_header("http", "::1", 8080) == "[::1]:8080"


def test_same_inputs_within_a_second_reuse_the_signed_head():
    payload = Payload.of(b'{"a": 1}', "application/json")
    memo = Signer("us-east-1", "POST", "h", "/p")
    first = memo.sign("AK", "s", "t", payload.content_type, payload.sha256, 8, now=NOW.timestamp())
    again = memo.sign("AK", "s", "t", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 0.5)
    assert again is first  # memoized
    fresh = Signer("us-east-1", "POST", "h", "/p").sign(
        "AK", "s", "t", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 0.5
    )
    assert fresh == first  # and what a fresh signer computes
    other_token = memo.sign(
        "AK", "s", "t2", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 0.5
    )
    next_second = memo.sign(
        "AK", "s", "t", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 1.5
    )
    assert len({first.head, other_token.head, next_second.head}) == 3
