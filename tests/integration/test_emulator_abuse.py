"""The emulator under abuse (issue 16, items 8-10), against a real ``smload emulator`` process on
127.0.0.1: unknown names cannot grow its stats; heads are held to a front end's limits; a malformed
request behind pipelined ones is answered after them, and only what was answered is counted;
percent-encoded endpoint labels and IAM-shaped access key ids work."""

from __future__ import annotations

import http.client
import socket
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from testkit.rawhttp import AUTH, Probe, exchange, invocation, parse_answers
from testkit.support import http_get, start_emulator, wait_until

UNKNOWN, UNCONFIGURED = "unknown", "(unknown)"


# --- item 8: bounded stats -------------------------------------------------------------------------------


def test_unknown_names_share_one_label_and_reset_forgets_them(procs):
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=0")
    # 4,000 requests, each naming a new endpoint or a new variant; half of them without a signature.
    requests, expected = [], {}
    for i in range(4000):
        name = uuid.uuid4().hex.encode()
        auth = i % 2 == 0
        if i % 4 < 2:
            requests.append(invocation(b"ep-" + name, auth=auth))  # an unknown endpoint, no variant named
            key = (UNCONFIGURED, UNKNOWN)
        else:
            requests.append(
                invocation(b"ep", auth=auth, headers=b"X-Amzn-SageMaker-Target-Variant: %s\r\n" % name)
            )
            key = ("ep", UNCONFIGURED)
        status = "400" if auth else "403"
        expected.setdefault(key, {}).setdefault(status, 0)
        expected[key][status] += 1
    for start in range(0, len(requests), 500):  # pipelined, 500 per connection
        answers, _ = exchange(emulator.port, b"".join(requests[start : start + 500]), 500)
        assert len(answers) == 500
    stats = emulator.stats()
    assert stats["requests"] == 4000
    assert {e: set(v["variants"]) for e, v in stats["endpoints"].items()} == {
        "ep": {"v", UNCONFIGURED},
        UNCONFIGURED: {UNKNOWN},
    }
    for (endpoint, variant), statuses in expected.items():
        assert stats["endpoints"][endpoint]["variants"][variant]["status"] == statuses
    metrics = emulator.metrics()
    assert (
        len(metrics.splitlines()) < 100
        and 'endpoint="(unknown)",variant="unknown",status="403"} 1000' in metrics
    )

    emulator.reset()
    stats = emulator.stats()
    assert {e: set(v["variants"]) for e, v in stats["endpoints"].items()} == {"ep": {"v"}}
    assert stats["requests"] == 0


def test_a_named_variant_of_the_endpoint_is_counted_under_it_even_when_refused(procs):
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=0")
    answers, _ = exchange(
        emulator.port,
        invocation(b"ep", auth=False, headers=b"X-Amzn-SageMaker-Target-Variant: v\r\n")
        + invocation(b"ep", auth=False),
        2,
    )
    assert [a.status for a in answers] == [403, 403]
    variants = emulator.stats()["endpoints"]["ep"]["variants"]
    assert variants["v"]["errors"] == {"AccessDenied": 1} and variants[UNKNOWN]["errors"] == {
        "AccessDenied": 1
    }


# --- item 9: heads, repeated headers, pipelining ----------------------------------------------------------


@pytest.fixture
def echo(procs):
    return start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=0")


def _header(name: bytes, size: int) -> bytes:
    """A header line of exactly ``size`` bytes, CRLF excluded."""
    return name + b": " + b"a" * (size - len(name) - 2) + b"\r\n"


@pytest.mark.parametrize(
    "extra, status",
    [
        (_header(b"X-Big", 16 * 1024), 200),  # at the limit
        (_header(b"X-Big", 16 * 1024 + 1), 431),  # one byte over
        (b"".join(_header(b"X-H%d" % i, 15 * 1024) for i in range(4)), 200),  # 60 KiB in all
        (b"".join(_header(b"X-H%d" % i, 15 * 1024) for i in range(5)), 431),  # 75 KiB
        (b"".join(b"X-H%d: 1\r\n" % i for i in range(100 - 3)), 200),  # 100 lines with the request's own 3
        (b"".join(b"X-H%d: 1\r\n" % i for i in range(101 - 3)), 431),
    ],
)
def test_head_limits(echo, extra, status):
    request = invocation(b"ep", b"hello", headers=extra)
    answers, closed = exchange(echo.port, request, 1)
    assert [a.status for a in answers] == [status]
    if status == 200:
        assert answers[0].body == b"hello" and not closed
        assert echo.stats()["requests"] == 1
    else:
        assert answers[0].headers["connection"] == "close" and closed
        assert echo.stats()["requests"] == 0  # refused before the runtime API: not counted


def test_request_line_limit(echo):
    answers, closed = exchange(echo.port, invocation(b"ep" + b"x" * (16 * 1024)), 1)
    assert [a.status for a in answers] == [414] and closed


def test_repeated_headers_are_joined_in_order(echo):
    attributes = b"".join(b"X-Amzn-SageMaker-Custom-Attributes: a%d\r\n" % i for i in range(50))
    answers, _ = exchange(echo.port, invocation(b"ep", headers=attributes), 1)
    assert answers[0].status == 200
    assert answers[0].headers["x-amzn-sagemaker-custom-attributes"] == ",".join(f"a{i}" for i in range(50))


def test_a_head_that_never_ends_is_cut_off(echo):
    """A header value streamed without end (the issue sent 200 MB): refused with 431 once it passes
    64 KiB beyond the read it began in; the emulator stops reading, so the sender is stopped too."""
    sent = 0
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\n" + AUTH + b"X-Endless: ")
        piece = b"a" * 16384
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:  # reset or timed out: the emulator stopped reading and closed
            pass
        buf = b""
        try:
            while chunk := sock.recv(65536):
                buf += chunk
        except OSError:
            pass
    answers, _ = parse_answers(buf)
    assert [a.status for a in answers] == [431]
    assert sent < 16 * 1024 * 1024  # the kernel's buffers, not the emulator's memory, took the rest


def test_a_flood_of_repeated_headers_does_not_stall_other_clients(echo):
    """200,000 repeated header lines (3.3 MB; the issue's 7.6 s stall of every client): 431, and a
    client on another connection (its own process) is answered within 100 ms throughout."""
    flood = b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\n" + AUTH + b"X-Rep: 0123456\r\n" * 200_000
    with Probe(echo.port, "ep") as probe:
        wait_until(lambda: echo.stats()["requests"] >= 5, 10, "the probe's first requests")
        with socket.create_connection(("127.0.0.1", echo.port), timeout=30) as sock:
            try:
                sock.sendall(flood + b"\r\n")
            except OSError:  # refused and closed before it took everything
                pass
            buf = b""
            try:
                while chunk := sock.recv(65536):
                    buf += chunk
            except OSError:
                pass
        done = echo.stats()["requests"]
        wait_until(lambda: echo.stats()["requests"] >= done + 5, 10, "the probe's requests after the flood")
    assert [a.status for a in parse_answers(buf)[0]] == [431]
    assert probe.statuses == {200} and len(probe.results) >= 10
    assert probe.slowest[0] < 0.1, f"another client waited {probe.slowest[0] * 1000:.0f} ms"


@pytest.fixture
def slow(procs):
    return start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=30,concurrency=8")


@pytest.mark.parametrize(
    "bad, status",
    [
        (b"NOT HTTP AT ALL\x00\r\n\r\n", 400),
        (b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 400),
        (b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\n" + _header(b"X-Big", 20000) + b"\r\n", 431),
    ],
)
def test_an_error_behind_pipelined_requests_is_answered_after_them(slow, bad, status):
    """Three requests the model takes 30 ms each, then a bad one, in one write: the three are
    answered in order, then the error, then the connection closes; the stats count the three."""
    good = b"".join(invocation(b"ep", body) for body in (b"first", b"second", b"third"))
    answers, closed = exchange(slow.port, good + bad, 4)
    assert [(a.status, a.body) for a in answers[:3]] == [(200, b"first"), (200, b"second"), (200, b"third")]
    assert [a.status for a in answers[3:]] == [status] and closed
    variant = wait_until(lambda: slow.stats()["endpoints"]["ep"]["variants"]["v"], 5, "the stats")
    assert variant["status"] == {"200": 3} and slow.stats()["requests"] == 3


def test_requests_lost_to_a_drop_are_counted_only_if_they_invoke(procs):
    """A dropped request closes its connection: the invocations pipelined behind it are counted as
    dropped, a /ping behind it is not (an answered /ping is not counted either)."""
    emulator = start_emulator(
        procs,
        "--endpoint",
        "ep",
        "--variant",
        "name=slow,weight=1,latency_ms=30",
        "--variant",
        "name=drops,weight=1,latency_ms=0,drop_rate=1",
    )
    to = b"X-Amzn-SageMaker-Target-Variant: %s\r\n"
    data = (
        invocation(b"ep", headers=to % b"slow")
        + invocation(b"ep", headers=to % b"drops")
        + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        + invocation(b"ep", headers=to % b"slow")
    )
    answers, closed = exchange(emulator.port, data, 2)
    assert [a.status for a in answers] == [200] and closed
    stats = emulator.stats()
    variants = stats["endpoints"]["ep"]["variants"]
    assert stats["requests"] == 3
    assert variants["slow"]["status"] == {"200": 1, "dropped": 1} and variants["drops"]["status"] == {
        "dropped": 1
    }


# --- item 10: percent-encoded labels, access key ids --------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_a_percent_encoded_endpoint_label_is_decoded(procs, tmp_path, strict):
    """``/endpoints/ep%2Dlt/invocations``, signed by botocore with AWS's documentation key
    (AKIDEXAMPLE: 11 characters, which IAM's pattern allows), reaches endpoint ep-lt."""
    args = ["--endpoint", "ep-lt", "--variant", "name=v,latency_ms=0"]
    if strict:
        args += ["--strict-sigv4", "--access-key", "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"]
    emulator = start_emulator(procs, *args)
    request = AWSRequest(
        method="POST",
        url=f"{emulator.url}/endpoints/ep%2Dlt/invocations",
        data=b'{"a": 1}',
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "sagemaker", "us-east-1"
    ).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    conn.request("POST", "/endpoints/ep%2Dlt/invocations", request.body, dict(request.headers.items()))
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b'{"a": 1}')
    assert emulator.stats()["endpoints"]["ep-lt"]["variants"]["v"]["status"] == {"200": 1}


def test_unknown_path_label_still_not_found(echo):
    status, _ = http_get(f"{echo.url}/ping")
    answers, _ = exchange(echo.port, invocation(b"e%70"), 1)  # %70 is "p": ep
    assert status == 200 and answers[0].status == 200
    answers, _ = exchange(echo.port, invocation(b"e%2Fp"), 1)  # a slash is no name character
    assert answers[0].status == 400 and b"Endpoint e/p of account" in answers[0].body
