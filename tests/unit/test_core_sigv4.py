"""Our SigV4 signer against botocore's own (``botocore.auth.SigV4Auth``): same Authorization
header, byte for byte, for every shape of InvokeEndpoint request we send."""

import datetime
from unittest import mock

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from smload.invoke.payloads import Payload
from smload.invoke.sigv4 import Signer, host_header, signing_key

NOW = datetime.datetime(2026, 3, 1, 23, 59, 59, tzinfo=datetime.UTC)


def botocore_authorization(url, headers, body, access, secret, token, region):
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        botocore.auth.SigV4Auth(Credentials(access, secret, token), "sagemaker", region).add_auth(request)
    return request.headers["Authorization"], request.headers["X-Amz-Date"]


def parse_head(head):
    request_line, *lines = head.split("\r\n\r\n")[0].split("\r\n")
    return request_line, dict(line.split(": ", 1) for line in lines)


CASES = [
    # scheme, host, port, content type, extra headers, token
    ("https", "runtime.sagemaker.eu-west-1.amazonaws.com", 443, "application/json", [], None),
    ("http", "127.0.0.1", 8080, "application/json", [("Accept", "application/json")], "session/token+=="),
    ("http", "localhost", 80, "text/csv", [("X-Amzn-SageMaker-Target-Variant", "variant-b"),
                                           ("X-Amzn-SageMaker-Custom-Attributes", "a=1;  b=2"),
                                           ("Accept", "text/csv")], "tok"),
    ("https", "example.com", 8443, None, [("X-Amzn-SageMaker-Target-Model", "model.tar.gz"),
                                          ("X-Amzn-SageMaker-Inference-Component", "ic-1"),
                                          ("X-Amzn-SageMaker-Target-Container-Hostname", "c1")], None),
]


@pytest.mark.parametrize("scheme,host,port,content_type,headers,token", CASES)
def test_authorization_matches_botocore(scheme, host, port, content_type, headers, token):
    body = b'{"inputs": [1, 2, 3]}'
    payload = Payload.of(body, content_type or "")
    host_value = host_header(scheme, host, port)
    path = "/endpoints/my-endpoint-1/invocations"
    signer = Signer("eu-west-1", "POST", host_value, path, headers)
    head = signer.sign("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token,
                       content_type, payload.sha256, len(body), now=NOW.timestamp()).head
    request_line, sent = parse_head(head)
    assert request_line == f"POST {path} HTTP/1.1"
    assert sent["Host"] == host_value
    assert sent["Content-Length"] == str(len(body))
    expected_headers = dict(headers)
    if content_type:
        expected_headers["Content-Type"] = content_type
    if token:
        expected_headers["X-Amz-Security-Token"] = token
    for name, value in expected_headers.items():
        assert sent[name] == value
    url = f"{scheme}://{host_value}{path}"
    authorization, date = botocore_authorization(
        url, [(k, v) for k, v in sent.items() if k not in ("Authorization", "X-Amz-Date", "Content-Length", "Host")],
        body, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, "eu-west-1")
    assert sent["X-Amz-Date"] == date == "20260301T235959Z"
    assert sent["Authorization"] == authorization


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
    fresh = Signer("us-east-1", "POST", "h", "/p").sign("AK", "s", "t", payload.content_type, payload.sha256, 8,
                                                        now=NOW.timestamp() + 0.5)
    assert fresh == first  # and what a fresh signer computes
    other_token = memo.sign("AK", "s", "t2", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 0.5)
    next_second = memo.sign("AK", "s", "t", payload.content_type, payload.sha256, 8, now=NOW.timestamp() + 1.5)
    assert len({first.head, other_token.head, next_second.head}) == 3
