"""The emulator as boto3, the AWS CLI and plain HTTP clients see it: a real ``smload emulator``
process on 127.0.0.1. Every SageMaker error type must surface in boto3 as its modelled exception
with its fields, and every answer must be counted in ``/_emulator/stats``."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
from botocore.exceptions import ClientError, EventStreamError
from testkit.support import BIN, aws_env, http_get, http_post, runtime_client, start_emulator

ERRORS_CONFIG = """
endpoints:
  - name: errors
    variants:
      - {name: ok, latency: 1}
      - {name: model, latency: 1, faults: {rates: {ModelError: 1.0}, model_error_status: 502}}
      - {name: throttled, latency: 1, faults: {rates: {ThrottlingException: 1.0}}}
      - {name: notready, latency: 1, faults: {rates: {ModelNotReadyException: 1.0}}}
      - {name: internal, latency: 1, faults: {rates: {InternalFailure: 1.0}}}
      - {name: unavailable, latency: 1, faults: {rates: {ServiceUnavailable: 1.0}}}
      - {name: dependency, latency: 1, faults: {rates: {InternalDependencyException: 1.0}}}
      - {name: invalid, latency: 1, faults: {rates: {ValidationError: 1.0}}}
      - name: streamer
        latency: 1
        stream: {parts: 6, part_delay_ms: 1}
      - name: breaks
        latency: 1
        stream: {parts: 6, error_rate: 1.0, error: ModelStreamError}
"""


@pytest.fixture
def errors_emulator(procs, tmp_path):
    config = tmp_path / "errors.yaml"
    config.write_text(ERRORS_CONFIG)
    return start_emulator(procs, "--config", str(config))


def test_boto3_invoke_returns_body_variant_and_headers(procs):
    emulator = start_emulator(procs, "--endpoint", "echo", "--variant", "name=only,latency_ms=2")
    client = runtime_client(emulator.url)
    response = client.invoke_endpoint(
        EndpointName="echo",
        Body=b'{"x": 1}',
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=abc",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Body"].read() == b'{"x": 1}'
    assert response["InvokedProductionVariant"] == "only"
    assert response["ContentType"] == "application/json"
    assert response["CustomAttributes"] == "trace=abc"
    assert len(response["ResponseMetadata"]["RequestId"]) == 36
    stats = emulator.stats()
    variant = stats["endpoints"]["echo"]["variants"]["only"]
    assert stats["requests"] == 1
    assert variant["status"] == {"200": 1} and variant["errors"] == {}
    assert variant["latency_ms"]["count"] == 1 and variant["latency_ms"]["p50"] >= 1.0


def test_a_new_stateful_session_gets_its_id_back(procs):
    """``SessionId=NEW_SESSION`` (smload's ``--session-id``): InvokeEndpoint answers the new session's
    id and expiry in the form botocore's model gives it; without it, or on the response stream (whose
    output has no such member), nothing."""
    emulator = start_emulator(procs, "--endpoint", "echo", "--variant", "name=only,latency_ms=1")
    client = runtime_client(emulator.url)
    shape = client.meta.service_model.shape_for("NewSessionResponseHeader")
    opened = client.invoke_endpoint(EndpointName="echo", Body=b"{}", SessionId="NEW_SESSION")
    assert re.fullmatch(shape.metadata["pattern"], opened["NewSessionId"]), opened["NewSessionId"]
    session = opened["NewSessionId"].split(";")[0]
    again = client.invoke_endpoint(EndpointName="echo", Body=b"{}", SessionId=session)
    assert "NewSessionId" not in again and "NewSessionId" not in client.invoke_endpoint(
        EndpointName="echo", Body=b"{}"
    )
    streamed = client.invoke_endpoint_with_response_stream(
        EndpointName="echo", Body=b"{}", SessionId="NEW_SESSION"
    )
    assert b"".join(e["PayloadPart"]["Bytes"] for e in streamed["Body"]) == b"{}"
    assert emulator.stats()["endpoints"]["echo"]["variants"]["only"]["status"] == {"200": 4}


def test_aws_cli_invoke_endpoint(procs, tmp_path):
    emulator = start_emulator(procs, "--endpoint", "cli-ep", "--variant", "name=AllTraffic,latency_ms=1")
    out = tmp_path / "out.json"
    result = subprocess.run(
        [
            str(BIN / "aws"),
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-url",
            emulator.url,
            "--endpoint-name",
            "cli-ep",
            "--content-type",
            "application/json",
            "--body",
            '{"a": 2}',
            str(out),
        ],
        env=aws_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == {"a": 2}
    assert json.loads(result.stdout)["InvokedProductionVariant"] == "AllTraffic"
    assert emulator.stats()["endpoints"]["cli-ep"]["variants"]["AllTraffic"]["status"] == {"200": 1}


@pytest.mark.parametrize(
    "variant, exception, status, code",
    [
        ("model", "ModelError", 424, "ModelError"),
        ("throttled", "ClientError", 400, "ThrottlingException"),
        ("notready", "ModelNotReadyException", 429, "ModelNotReadyException"),
        ("internal", "InternalFailure", 500, "InternalFailure"),
        ("unavailable", "ServiceUnavailable", 503, "ServiceUnavailable"),
        ("dependency", "InternalDependencyException", 530, "InternalDependencyException"),
        ("invalid", "ValidationError", 400, "ValidationError"),
    ],
)
def test_every_error_is_the_modelled_exception(errors_emulator, variant, exception, status, code):
    client = runtime_client(errors_emulator.url)
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="errors", Body=b"{}", TargetVariant=variant)
    err = caught.value
    assert type(err).__name__ == exception
    if exception != "ClientError":  # ThrottlingException is not in the service model: a generic ClientError
        assert isinstance(err, getattr(client.exceptions, exception))
    assert err.response["Error"]["Code"] == code
    assert err.response["Error"]["Message"]
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if variant == "model":
        assert err.response["OriginalStatusCode"] == 502
        assert "fault injected" in err.response["OriginalMessage"]
        assert (
            err.response["LogStreamArn"]
            == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/errors"
        )
        assert "Received server error (502) from primary" in err.response["Error"]["Message"]
    assert err.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-invoked-production-variant"] == variant
    counted = errors_emulator.stats()["endpoints"]["errors"]["variants"][variant]
    assert counted["status"] == {str(status): 1}
    assert counted["errors"] == {code: 1}


def test_unknown_endpoint_and_variant_are_validation_errors(errors_emulator):
    client = runtime_client(errors_emulator.url)
    with pytest.raises(
        client.exceptions.ValidationError, match="Endpoint nope of account 123456789012 not found"
    ):
        client.invoke_endpoint(EndpointName="nope", Body=b"{}")
    with pytest.raises(client.exceptions.ValidationError, match="Variant ghost not found"):
        client.invoke_endpoint(EndpointName="errors", Body=b"{}", TargetVariant="ghost")
    stats = errors_emulator.stats()["endpoints"]  # names the configuration lacks are counted as "(unknown)"
    assert stats["(unknown)"]["variants"]["unknown"]["errors"] == {"ValidationError": 1}
    assert stats["errors"]["variants"]["(unknown)"]["status"] == {"400": 1}


def test_body_over_6_mib_is_a_validation_error(errors_emulator):
    client = runtime_client(errors_emulator.url)
    with pytest.raises(client.exceptions.ValidationError, match="less than or equal to 6291456"):
        client.invoke_endpoint(EndpointName="errors", Body=b"x" * (6 * 1024 * 1024 + 1), TargetVariant="ok")
    ok = client.invoke_endpoint(EndpointName="errors", Body=b"x" * (6 * 1024 * 1024), TargetVariant="ok")
    assert len(ok["Body"].read()) == 6 * 1024 * 1024


def test_request_without_signature_is_rejected_403(errors_emulator):
    status, body = http_post(f"{errors_emulator.url}/endpoints/errors/invocations", b"{}")
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert errors_emulator.stats()["endpoints"]["errors"]["variants"]["unknown"]["errors"] == {
        "AccessDenied": 1
    }


def test_response_stream_is_read_by_boto3_as_payload_parts(errors_emulator):
    client = runtime_client(errors_emulator.url)
    body = bytes(range(256)) * 4
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="errors", Body=body, TargetVariant="streamer", ContentType="application/x-test"
    )
    events = list(response["Body"])
    assert len(events) == 6
    assert all(list(event) == ["PayloadPart"] for event in events)
    assert b"".join(event["PayloadPart"]["Bytes"] for event in events) == body
    assert response["InvokedProductionVariant"] == "streamer"
    assert response["ContentType"] == "application/x-test"
    assert errors_emulator.stats()["endpoints"]["errors"]["variants"]["streamer"]["status"] == {"200": 1}


def test_stream_that_breaks_halfway_raises_the_error_event(errors_emulator):
    client = runtime_client(errors_emulator.url)
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="errors", Body=b"0123456789ab", TargetVariant="breaks"
    )
    parts = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["Body"]:
            parts.append(event["PayloadPart"]["Bytes"])
    assert parts == [b"01", b"23", b"45"]
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"
    counted = errors_emulator.stats()["endpoints"]["errors"]["variants"]["breaks"]
    assert counted["status"] == {"200": 1} and counted["errors"] == {"ModelError": 1}


def test_stream_errors_before_the_stream_are_modelled(errors_emulator):
    client = runtime_client(errors_emulator.url)
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint_with_response_stream(EndpointName="errors", Body=b"{}", TargetVariant="model")
    assert caught.value.response["OriginalStatusCode"] == 502


def test_container_api_ping_and_invocations(procs):
    emulator = start_emulator(procs, "--endpoint", "box", "--variant", "name=solo,latency_ms=1")
    assert http_get(f"{emulator.url}/ping")[0] == 200
    status, body = http_post(f"{emulator.url}/invocations", b"payload", {"Content-Type": "text/plain"})
    assert (status, body) == (200, b"payload")
    stats = emulator.stats()
    assert stats["requests"] == 1  # /ping is not counted, /invocations is
    assert stats["endpoints"]["box"]["variants"]["solo"]["status"] == {"200": 1}


def test_control_api_reset_and_config(procs):
    emulator = start_emulator(
        procs, "--endpoint", "ctl", "--variant", "name=v1,weight=2,instances=3,concurrency=5,latency_ms=1"
    )
    client = runtime_client(emulator.url)
    for _ in range(3):
        client.invoke_endpoint(EndpointName="ctl", Body=b"{}")
    assert emulator.stats()["requests"] == 3
    emulator.reset()
    stats = emulator.stats()
    assert stats["requests"] == 0 and stats["since_reset_s"] < stats["uptime_s"]
    assert stats["endpoints"]["ctl"]["variants"]["v1"] == {
        "requests": 0,
        "status": {},
        "errors": {},
        "latency_ms": {"count": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0},
        "model_latency_ms": {
            "count": 0,
            "mean": 0.0,
            "p50": 0.0,
            "p90": 0.0,
            "p95": 0.0,
            "p99": 0.0,
            "max": 0.0,
        },
        "arrivals": {"per_second": [], "interarrival_cv": None},
    }
    status, body = http_get(f"{emulator.url}/_emulator/config")
    config = json.loads(body)
    variant = config["endpoints"][0]["variants"][0]
    assert (
        status == 200 and variant["instances"] == 3 and variant["concurrency"] == 5 and variant["weight"] == 2
    )
    assert variant["queue"]["max_depth"] == 300  # the default: 100 per instance


def _raw_exchange(port: int, data: bytes, expect_responses: int) -> list[bytes]:
    """Send raw bytes on one connection and read until ``expect_responses`` complete answers arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        buf = b""
        answers: list[bytes] = []
        while len(answers) < expect_responses:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                if len(rest) < length:
                    break
                answers.append(head + b"\r\n\r\n" + rest[:length])
                buf = rest[length:]
        closed = False
        if len(answers) == expect_responses:
            sock.settimeout(0.5)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
        return answers + [b"<closed>" if closed else b"<open>"]


AUTH = b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=00\r\n"


def test_pipelined_requests_are_answered_in_order(procs):
    emulator = start_emulator(procs, "--endpoint", "p", "--variant", "name=v,latency_ms=1,concurrency=8")
    requests = b"".join(
        b"POST /endpoints/p/invocations HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (b"first", b"second-one", b"third")
    )
    answers = _raw_exchange(emulator.port, requests, 3)
    assert [a.split(b"\r\n\r\n", 1)[1] for a in answers[:3]] == [b"first", b"second-one", b"third"]
    assert answers[3] == b"<open>"  # keep-alive


def test_connection_close_is_honoured(procs):
    emulator = start_emulator(procs, "--endpoint", "p", "--variant", "name=v,latency_ms=1")
    request = (
        b"POST /endpoints/p/invocations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + AUTH
        + b"Content-Length: 2\r\n\r\nhi"
    )
    answers = _raw_exchange(emulator.port, request, 1)
    assert b"Connection: close" in answers[0] and answers[0].endswith(b"\r\n\r\nhi")
    assert answers[1] == b"<closed>"


def test_unknown_path_is_not_counted(procs):
    emulator = start_emulator(procs, "--endpoint", "p", "--variant", "name=v,latency_ms=1")
    status, body = http_get(f"{emulator.url}/not/a/sagemaker/path")
    assert status == 404
    assert emulator.stats()["requests"] == 0
