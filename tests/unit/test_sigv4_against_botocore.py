"""Random requests (hypothesis; ``testkit.sigv4_random``): the load generator's Signer writes what
botocore's ``SigV4Auth`` writes, byte for byte, and the emulator's strict verifier accepts exactly
what botocore signed (and not the same request with one byte of its body or path changed). Random
paths with escapes, reserved characters, dot segments and ``//``; queries of any Unicode text with
repeated names; repeated headers of mixed case; session tokens or none.

2,000 requests against botocore, 500 of our signer against our verifier with queries as anyone may
write them; a few seconds in all."""

from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from testkit.sigv4_random import botocore_signed, random_requests, raw_queries, received, received_head

from smload.emulator import sigv4 as verifier_sigv4
from smload.emulator.config import AccessKey
from smload.invoke.sigv4 import Signer, host_header


def signer_for(request) -> Signer:
    parts = urlsplit(request.url)
    host = host_header(parts.scheme, parts.hostname, parts.port)
    return Signer(
        request.region,
        request.method,
        host,
        request.path,
        request.headers,
        service=request.service,
        query=request.query,
    )


def sign(request) -> str:
    return (
        signer_for(request)
        .sign(
            request.access_key,
            request.secret_key,
            request.token,
            request.content_type,
            request.payload_sha256,
            len(request.body),
            now=request.when,
        )
        .head
    )


def verifier_for(request) -> verifier_sigv4.Verifier:
    keys = {
        request.access_key: AccessKey(request.access_key, request.secret_key, session_token=request.token)
    }
    return verifier_sigv4.Verifier(keys, request.region, request.service, clock=lambda: request.when)


def sent_lines(head: str) -> list[tuple[str, str]]:
    return [tuple(line.split(": ", 1)) for line in head.split("\r\n\r\n")[0].split("\r\n")[1:]]


@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_requests())
def test_signer_writes_what_botocore_writes_and_the_verifier_accepts_exactly_that(request):
    reference = botocore_signed(request)
    head = sign(request)

    target = f"{request.path}?{request.query}" if request.query else request.path
    assert head.startswith(f"{request.method} {target} HTTP/1.1\r\n")
    ours = sent_lines(head)
    theirs = [(name, value) for name, value in reference.headers.items()]
    url = urlsplit(request.url)
    assert ours[0] == ("Host", host_header(url.scheme, url.hostname, url.port))
    # the same headers, in the same order for each name, and the same Authorization to the byte
    assert sorted(ours[1:], key=lambda line: line[0].lower()) == sorted(
        [*theirs, ("Content-Length", str(len(request.body)))], key=lambda line: line[0].lower()
    )
    assert dict(ours)["Authorization"] == reference.headers["Authorization"]

    path, query, headers = received(reference)
    verifier = verifier_for(request)
    assert verifier.verify(request.method, path, query, headers, request.body) is None
    assert (
        verifier.verify(request.method, path, query, headers, request.body + b"!")
        == verifier_sigv4.BAD_SIGNATURE
    )
    assert (
        verifier.verify(request.method, path + "x", query, headers, request.body)
        == verifier_sigv4.BAD_SIGNATURE
    )


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_requests(query=raw_queries))
def test_any_query_our_signer_sends_our_verifier_accepts(request):
    """Both sides decode a query the same way (a raw "+" is a space, escapes of either case) before
    encoding it again; sent as written, signed as received."""
    head = sign(request)
    method, path, query, headers = received_head(head)
    assert query == request.query
    verifier = verifier_for(request)
    assert verifier.verify(method, path, query, headers, request.body) is None
    assert verifier.verify(method, path, query + "&z", headers, request.body) == verifier_sigv4.BAD_SIGNATURE
