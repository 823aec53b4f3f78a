"""``smload.errors.classify``: every failure our clients (or botocore, gevent, sockets) can raise
lands in the closed set, and the failure exception reads exactly as its type in Locust's table."""

import pickle
import ssl

import botocore.exceptions as bx
import gevent
import pytest
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from smload import errors
from smload.errors import RequestFailure, classify, error_code, from_error_code


def client_error(code, status, **extra):
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return bx.ClientError(response, "InvokeEndpoint")


@pytest.mark.parametrize(
    "exc,expected",
    [
        (client_error("ModelError", 424, OriginalStatusCode=500), "ModelError(500)"),
        (client_error("ModelError", 424, OriginalStatusCode=404), "ModelError(404)"),
        (client_error("ThrottlingException", 400), "ThrottlingException"),
        (client_error("ValidationError", 400), "ValidationError"),
        (client_error("ModelNotReadyException", 429), "ModelNotReadyException"),
        (client_error("ServiceUnavailable", 503), "ServiceUnavailable"),
        (client_error("InternalFailure", 500), "InternalFailure"),
        (client_error("InternalDependencyException", 530), "InternalDependencyException"),
        (client_error("InvalidSignatureException", 403), "AccessDenied"),
        (client_error("UnrecognizedClientException", 403), "AccessDenied"),
        (client_error("ExpiredTokenException", 403), "AccessDenied"),
        (client_error("MissingAuthenticationTokenException", 403), "AccessDenied"),
        (client_error("IncompleteSignatureException", 400), "AccessDenied"),
        (client_error("502", 502), "HTTPError(502)"),
        (bx.ReadTimeoutError(endpoint_url="http://x"), "Timeout"),
        (bx.ConnectTimeoutError(endpoint_url="http://x"), "Timeout"),
        (bx.EndpointConnectionError(endpoint_url="http://x"), "ConnectionError"),
        (bx.ConnectionClosedError(endpoint_url="http://x"), "ConnectionError"),
        (TimeoutError("timed out"), "Timeout"),
        (gevent.Timeout(1), "Timeout"),
        (ConnectionRefusedError(111, "refused"), "ConnectionError"),
        (ConnectionResetError(104, "reset"), "ConnectionError"),
        (ssl.SSLCertVerificationError("bad cert"), "ConnectionError"),
        (HTTPConnectionClosed("connection closed."), "ConnectionError"),
        (HTTPParseError("garbage"), "ConnectionError"),
        (RequestFailure("ModelError(500)", "detail"), "ModelError(500)"),
        ("ThrottlingException", "ThrottlingException"),
        ("HTTPError(418)", "HTTPError(418)"),
        ("something else", errors.OTHER),
        (ValueError("custom check"), errors.OTHER),
        (Exception("ThrottlingException"), "ThrottlingException"),
    ],
)
def test_classify(exc, expected):
    assert classify(exc) == expected
    assert errors.base_type(classify(exc)) in errors.ERROR_TYPES + (errors.OTHER,)


def test_error_code_where_botocore_looks():
    assert (
        error_code("ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/", {}, 424)
        == "ModelError"
    )
    assert (
        error_code(None, {"__type": "com.amazon.coral.service#UnrecognizedClientException"}, 403)
        == "UnrecognizedClientException"
    )
    assert error_code(None, {"code": "ThrottlingException"}, 400) == "ThrottlingException"
    assert error_code(None, {}, 502) == "502"
    assert from_error_code("502", 502) == "HTTPError(502)"
    assert from_error_code("ModelStreamError", None) == "ModelError"


def test_failure_reads_as_its_type_in_locusts_table():
    # Locust's failures table keys on repr() (locust.stats.StatsError.parse_error); importing Locust
    # here would monkey-patch the test process, so the integration tests check the table itself
    failure = RequestFailure("ModelError(500)", "Received server error (500) from primary ...")
    assert str(failure) == repr(failure) == "ModelError(500)"
    assert pickle.loads(pickle.dumps(failure)).detail == failure.detail
