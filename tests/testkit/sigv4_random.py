"""Random requests for the SigV4 property tests (hypothesis), and botocore's ``SigV4Auth`` signing
them as it signs real requests: the URL as botocore builds it (the path percent-encoded where a
request line needs it, the query from its own ``percent_encode_sequence``), headers appended one by
one (so repeated names stay repeated), the clock frozen at the example's time.

The random part is what varies from one real request to another and what the spec has rules for:
paths with escapes (``%2D``, lower-case hex), reserved characters, dot segments and ``//``; queries
of any Unicode text (spaces, ``+``, ``=``, ``&``) with repeated names; headers of mixed case,
repeated, with inner whitespace, including names that sort between ``x-amz-date`` and
``x-amz-security-token``; session tokens or none; bodies, content types, hosts with and without a
port, regions, services and times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from hypothesis import strategies as st

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_SUB_DELIMS = "!$&'()*+,;="
# Headers the signer writes itself or botocore never signs: not among the random ones.
_RESERVED = {
    "host",
    "content-type",
    "content-length",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "authorization",
    "expect",
    "transfer-encoding",
    "user-agent",
    "x-amzn-trace-id",
    "connection",
    "te",
    "keep-alive",
    "upgrade",
    "trailer",
    "baggage",
    "traceparent",
    "tracestate",
    "proxy-authenticate",
    "proxy-authorization",
}
# Names that sort around the ones the signer adds (x-amz-date, x-amz-security-token, host), and
# SageMaker's own.
_NAMES = [
    "X-Amz-Meta-Owner",
    "x-amz-meta-a",
    "X-Amz-Request-Payer",
    "X-Amz-Expected-Bucket-Owner",
    "X-Amz-E",
    "X-Amz-Tagging",
    "x-amz-date-of-birth",
    "X-Amz-Securitz",
    "X-Amz-A",
    "X-Amzn-SageMaker-Target-Variant",
    "X-Amzn-SageMaker-Custom-Attributes",
    "Accept",
    "A",
    "Hos",
    "Hostname",
    "Z-Last",
    "My-Header1",
]

# Escapes as clients write them: upper and lower case, of reserved and unreserved characters alike
ESCAPES = [
    "%2D",
    "%2d",
    "%7E",
    "%7e",
    "%41",
    "%2F",
    "%2f",
    "%25",
    "%3A",
    "%2B",
    "%20",
    "%E1%88%B4",
    "%e1%88%b4",
    "%00",
    "%FF",
    "%3F",
    "%23",
    "%26",
    "%3D",
]
_PCHAR = _UNRESERVED + _SUB_DELIMS + ":@"
segment = st.one_of(
    st.sampled_from(["", ".", "..", "endpoints", "invocations"]),
    st.tuples(
        st.text(_PCHAR, max_size=6), st.sampled_from(["", "", *ESCAPES]), st.text(_PCHAR, max_size=3)
    ).map(lambda parts: "".join(parts) or "x"),  # maps, not filters: a filter costs retries
)


@st.composite
def paths(draw) -> str:
    """A path as a request line carries it (every character allowed there raw, escapes as they come)."""
    segments = draw(st.lists(segment, max_size=7))
    return "/" + "/".join(segments) + draw(st.sampled_from(["", "", "/"]))


PATHS = paths()
query_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
query_name = st.one_of(
    st.sampled_from(["a", "A", "Param", "Param-3", "x+y", "a b", "X-Amz-Meta"]), query_text
)
queries = st.lists(st.tuples(query_name, query_text), max_size=5).map(percent_encode_sequence)

header_name = st.one_of(
    st.sampled_from(_NAMES + [name.swapcase() for name in _NAMES]),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12),
).map(lambda name: f"X-{name}" if name.lower() in _RESERVED else name)
# Visible ASCII with inner runs of spaces and tabs; no leading or trailing whitespace: it is not part
# of a field value (RFC 9110), and what each signer does with it is not the question here.
header_value = st.text("".join(map(chr, range(0x21, 0x7F))) + " \t", max_size=24).map(
    lambda v: v.strip(" \t")
)
headers = st.lists(st.tuples(header_name, header_value), max_size=6)
tokens = st.one_of(
    st.none(),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=", min_size=1, max_size=80),
)


@dataclass(frozen=True)
class Request:
    method: str
    scheme: str
    host: str  # as in the URL: a name or address, with its port when not the default
    path: str
    query: str  # the query as sent (without "?"), "" for none
    headers: list[tuple[str, str]]  # the request's own, in order, repeated names repeated
    content_type: str | None
    body: bytes
    access_key: str
    secret_key: str
    token: str | None
    region: str
    service: str
    when: int  # Unix time of signing

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@st.composite
def random_requests(draw, path=PATHS, query=queries) -> Request:
    return Request(
        method=draw(st.sampled_from(["POST", "GET", "PUT", "DELETE"])),
        scheme=draw(st.sampled_from(["http", "https"])),
        host=draw(
            st.sampled_from(
                [
                    "runtime.sagemaker.us-east-1.amazonaws.com",
                    "127.0.0.1:8080",
                    "localhost:80",
                    "example.com:443",
                    "[::1]:8443",
                    "h",
                ]
            )
        ),
        path=draw(path),
        query=draw(query),
        headers=draw(headers),
        content_type=draw(st.sampled_from([None, "application/json", "text/csv;  charset=utf-8", "a/b  "])),
        body=draw(st.binary(max_size=40)),
        access_key=draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)),
        secret_key=draw(
            st.text(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", min_size=1, max_size=40
            )
        ),
        token=draw(tokens),
        region=draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"])),
        service=draw(st.sampled_from(["sagemaker", "execute-api"])),
        when=draw(st.integers(1_400_000_000, 2_100_000_000)),
    )


def botocore_signed(request: Request) -> AWSRequest:
    """The request signed by botocore's SigV4Auth at ``request.when``."""
    signed = AWSRequest(method=request.method, url=request.url, data=request.body)
    if request.content_type is not None:
        signed.headers["Content-Type"] = request.content_type
    for name, value in request.headers:
        signed.headers[name] = value  # botocore's HTTPHeaders appends: a repeated name stays repeated
    when = dt.datetime.fromtimestamp(request.when, dt.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(
            Credentials(request.access_key, request.secret_key, request.token),
            request.service,
            request.region,
        ).add_auth(signed)
    return signed


def received(signed: AWSRequest) -> tuple[str, str, dict[str, str]]:
    """What the emulator's verifier is handed for a request: the raw path and query, and the
    headers by lower-case name, a repeated one's values joined with "," (server.py), the Host header
    as an HTTP client writes it from the URL."""
    parts = urlsplit(signed.url)
    host = parts.netloc.removesuffix(":443" if parts.scheme == "https" else ":80")
    return parts.path, parts.query, _joined([("Host", host), *signed.headers.items()])


def received_head(head: str) -> tuple[str, str, str, dict[str, str]]:
    """(method, path, query, headers) of a request head as the emulator's verifier is handed them."""
    request_line, *lines = head.split("\r\n\r\n")[0].split("\r\n")
    method, target, _ = request_line.split(" ")
    path, _, query = target.partition("?")
    return method, path, query, _joined(tuple(line.split(": ", 1)) for line in lines)


def _joined(lines) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in lines:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


# Queries as anyone may write them in a URL: raw "+", ":", "/", "?", lower-case escapes, "=" in
# values, empty pairs, names without "=": for our signer against our verifier (botocore's own
# queries are always in the encoded form above).
raw_queries = st.lists(
    st.one_of(st.text(_PCHAR + "/?", min_size=1, max_size=8), st.sampled_from(ESCAPES)), max_size=4
).map("".join)
