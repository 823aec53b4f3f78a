"""Both clients send the same request: a recording HTTP server on 127.0.0.1 (standing in for the
emulator, because the emulator keeps no copy of what it receives) captures what each sends for the
same options, and every request head, body and signature is checked against botocore's signer."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import threading
from contextlib import closing
from unittest import mock

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from testkit.support import TEST_ACCESS_KEY, TEST_SECRET_KEY, aws_env, locust_results, run_locust, start_moto

from smload.emulator import wire

OPTIONS = [
    "--accept",
    "application/json",
    "--custom-attributes",
    "trace=abc;  mode=1",
    "--target-variant",
    "variant-b",
    "--target-container-hostname",
    "container-1",
    "--inference-component",
    "component-1",
    "--session-id",
    "NEW_SESSION",
    "--inference-id",
    "run 42/a",
]
# headers the request is made of (the rest, User-Agent and the SDK's bookkeeping, may differ)
COMPARED = (
    "host",
    "content-type",
    "content-length",
    "accept",
    "x-amzn-sagemaker-accept",
    "x-amz-security-token",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-target-variant",
    "x-amzn-sagemaker-target-model",
    "x-amzn-sagemaker-target-container-hostname",
    "x-amzn-sagemaker-inference-component",
    "x-amzn-sagemaker-session-id",
    "x-amzn-sagemaker-inference-id",
    "x-amzn-sagemaker-enable-explanations",
)


class Recorder:
    """A keep-alive HTTP/1.1 server that records every request and answers like SageMaker would."""

    def __init__(self, stream: bool, tls: ssl.SSLContext | None = None):
        self.stream = stream
        self.tls = tls
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve_tls if self.tls else self._serve, args=(conn,), daemon=True
            ).start()

    def _serve_tls(self, conn: socket.socket) -> None:
        try:
            conn = self.tls.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # a client that does not trust our certificate hangs up
            return
        self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        with closing(conn):
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
                length = int(headers.get("content-length", 0))
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.requests.append((request_line, headers, body))
                if self.stream:
                    answer = wire.payload_part(b"part one") + wire.payload_part(b"part two")
                    kind = b"application/vnd.amazon.eventstream"
                else:
                    answer, kind = b'{"ok": true}', b"application/json"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nx-Amzn-Invoked-Production-Variant: variant-b\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (kind, len(answer), answer)
                )

    def close(self) -> None:
        self.sock.close()


def valid_signature(request_line: str, headers: dict[str, str], body: bytes, url: str) -> bool:
    """Re-sign what was received with botocore at the same X-Amz-Date: the same Authorization?"""
    method, path, _ = request_line.split(" ")
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=method, url=url + path, data=body, headers={h: headers[h] for h in signed if h != "host"}
    )
    when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        SigV4Auth(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "sagemaker", "eu-west-1").add_auth(request)
    return request.headers["Authorization"] == headers["authorization"]


def capture(recorder: Recorder, tmp_path, client: str, stream: bool, *more: str, env=None):
    recorder.requests = []
    (tmp_path / "body.csv").write_text("1.5,2.5,3.5\n")
    extra = (
        ["--stream"] if stream else ["--target-model", "model-a.tar.gz", "--enable-explanations", "`true`"]
    )
    result = run_locust(
        "--headless",
        "--metrics-port",
        "0",
        "-u",
        "1",
        "-r",
        "1",
        "-t",
        "2s",
        "--stop-timeout",
        "5",
        "--endpoint-name",
        "same-ep",
        "--endpoint-url",
        recorder.url,
        "--region",
        "eu-west-1",
        "--payload",
        str(tmp_path / "body.csv"),
        "--client",
        client,
        *OPTIONS,
        *extra,
        *more,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return recorder.requests


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_fast_and_boto3_send_the_same_request(tmp_path, stream):
    recorder = Recorder(stream)
    try:
        sent = {client: capture(recorder, tmp_path, client, stream) for client in ("fast", "boto3")}
    finally:
        recorder.close()
    shapes = {}
    for client, requests in sent.items():
        assert len(requests) > 10, client
        for request_line, headers, body in requests:
            assert valid_signature(request_line, headers, body, recorder.url), (client, headers)
        request_line, headers, body = requests[0]
        authorization = headers["authorization"]
        shapes[client] = (
            request_line,
            body,
            {h: headers[h] for h in COMPARED if h in headers},
            authorization.split("SignedHeaders=")[1].split(",")[0],  # which headers are signed
            authorization.split("Credential=")[1]
            .split("/", 2)[2]
            .split(",")[0],  # region/service/aws4_request
        )
    assert shapes["fast"] == shapes["boto3"]
    request_line, body, headers, signed, scope = shapes["fast"]
    operation = "invocations-response-stream" if stream else "invocations"
    assert request_line == f"POST /endpoints/same-ep/{operation} HTTP/1.1"
    assert body == b"1.5,2.5,3.5\n" and headers["content-type"] == "text/csv"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc;  mode=1"
    assert headers["x-amzn-sagemaker-accept" if stream else "accept"] == "application/json"
    assert (headers["x-amzn-sagemaker-session-id"], headers["x-amzn-sagemaker-inference-id"]) == (
        "NEW_SESSION",
        "run 42/a",
    )
    assert headers.get("x-amzn-sagemaker-enable-explanations") == (None if stream else "`true`")
    assert scope == "eu-west-1/sagemaker/aws4_request"


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_role_arn_signs_with_the_assumed_role(procs, tmp_path, client):
    """--role-arn: botocore's assume-role credentials, from moto's STS (no AWS here)."""
    moto = start_moto(procs)
    recorder = Recorder(stream=False)
    try:
        env = aws_env(AWS_ENDPOINT_URL_STS=moto.url)
        requests = capture(
            recorder,
            tmp_path,
            client,
            False,
            "--role-arn",
            "arn:aws:iam::123456789012:role/loadtest",
            env=env,
        )
    finally:
        recorder.close()
    assert len(requests) > 10
    keys = {headers["authorization"].split("Credential=")[1].split("/")[0] for _, headers, _ in requests}
    tokens = {headers.get("x-amz-security-token") for _, headers, _ in requests}
    assert len(keys) == 1 and len(tokens) == 1, (keys, tokens)
    [key], [token] = keys, tokens
    assert key.startswith("ASIA") and key != TEST_ACCESS_KEY and token  # temporary credentials of the role


def self_signed(directory) -> tuple[ssl.SSLContext, str]:
    """A certificate for 127.0.0.1 that no trust store knows: the server's context and the cert file."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, str(cert)


@pytest.mark.parametrize("client", ["fast", "boto3"])
def test_tls_is_verified(tmp_path, client):
    """HTTPS: an unknown certificate is refused (ConnectionError, nothing sent); trusted through
    AWS_CA_BUNDLE, as botocore reads it, the same requests go through."""
    context, cert = self_signed(tmp_path)
    recorder = Recorder(stream=False, tls=context)
    try:
        refused = run_locust(
            "--headless",
            "--metrics-port",
            "0",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "2s",
            "--stop-timeout",
            "5",
            "--json",
            "--endpoint-name",
            "tls-ep",
            "--endpoint-url",
            recorder.url,
            "--region",
            "eu-west-1",
            "--payload",
            str(_body(tmp_path)),
            "--client",
            client,
            "--exit-code-on-error",
            "0",
        )
        assert refused.returncode == 0, refused.stderr[-3000:]
        assert recorder.requests == []
        results = locust_results(refused)
        assert results.requests[("InvokeEndpoint", "tls-ep/unknown")] > 0
        assert list(results.failures[("InvokeEndpoint", "tls-ep/unknown")]) == ["ConnectionError"]

        trusted = capture(recorder, tmp_path, client, False, env=aws_env(AWS_CA_BUNDLE=cert))
        assert len(trusted) > 10
    finally:
        recorder.close()


def _body(directory):
    (directory / "body.csv").write_text("1.5,2.5,3.5\n")
    return directory / "body.csv"
