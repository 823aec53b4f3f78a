"""AWS's Signature Version 4 test suite, restated: one case per vector of the suite that botocore
keeps in its tests (``tests/unit/auth/aws4_testsuite``, from awslabs/aws-c-auth's
``aws-sig-v4-test-suite``, Apache-2.0), each named after its vector and exercising the same rule.

The suite's files are not copied here (code and data fetched for research stay out of this
repository): each case gives the request in our own form and the canonical request it must produce,
worked out by hand from the rules (AWS's "Create a canonical request"); the expected signature is
computed by botocore's own HMAC chain from that canonical request (:func:`expected_authorization`),
so the oracle is independent of the code under test. ``scripts/sigv4_suite.py`` runs the signer and
the verifier over the suite's original files where a checkout has them.

Every vector signs with the suite's example credentials at its fixed time, for the service
``service`` in ``us-east-1`` on host ``example.amazonaws.com``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20150830T123600Z"
EPOCH = 1440938160.0  # AMZ_DATE as a Unix time
REGION = "us-east-1"
SERVICE = "service"
HOST = "example.amazonaws.com"
# Session tokens of our own (the suite's are example strings as well): one plain, one with the
# characters a real STS token has ("/", "+", "=").
TOKEN = "FQoDYXdzEXAMPLEsessionTOKEN0123456789abcdef"
STS_TOKEN = "AQoDYXdzEPT//////////wEXAMPLE+sts/token+with/slashes+and+plus==" * 2

_HOST = f"host:{HOST}"
_DATE = f"x-amz-date:{AMZ_DATE}"


@dataclass(frozen=True)
class Case:
    name: str  # the vector's name in the suite
    method: str
    target: str  # the request-target as in the request line: path, then "?" and the query if any
    headers: tuple[tuple[str, str], ...] = ()  # besides Host and X-Amz-Date, in the order sent
    body: bytes = b""
    token: str | None = None  # a session token the signer adds (and signs)
    unsigned_token: str | None = None  # a session token header added after signing (not signed)
    # the canonical request's parts, worked out by hand
    uri: str = "/"
    query: str = ""
    lines: tuple[str, ...] = (_HOST, _DATE)  # the canonical header lines, in order

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def sent_headers(self) -> list[tuple[str, str]]:
        """Every header the signature covers, as sent: Host, the case's own, X-Amz-Date, the token."""
        out = [("Host", HOST), *self.headers, ("X-Amz-Date", AMZ_DATE)]
        if self.token is not None:
            out.append(("X-Amz-Security-Token", self.token))
        return out

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def signed_headers(self) -> str:
        return ";".join(line.partition(":")[0] for line in self.lines)

    @property
    def canonical_request(self) -> str:
        return "\n".join(
            [self.method, self.uri, self.query, *self.lines, "", self.signed_headers, self.payload_sha256]
        )

    @property
    def valid_http(self) -> bool:
        """Whether the request line can be sent as it is (two vectors carry a raw space or raw
        UTF-8 in the path, which HTTP parsers refuse; a sender percent-encodes them, and then
        signs that)."""
        return self.path.isascii() and " " not in self.path


def expected_authorization(case: Case) -> str:
    """The Authorization header for the hand-made canonical request, signed by botocore."""
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, case.token), SERVICE, REGION)
    request = AWSRequest()
    request.context["timestamp"] = AMZ_DATE
    signature = auth.signature(auth.string_to_sign(request, case.canonical_request), request)
    return (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{AMZ_DATE[:8]}/{REGION}/{SERVICE}/aws4_request, "
        f"SignedHeaders={case.signed_headers}, Signature={signature}"
    )


def _mine(name: str, *values: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for value in values)


_UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FORM = b"Param1=value1"

CASES = [
    # repeated headers: one line, the values in the order sent, joined with commas
    Case(
        "get-header-key-duplicate",
        "GET",
        "/",
        _mine("My-Header1", "value2", "value2", "value1"),
        lines=(_HOST, "my-header1:value2,value2,value1", _DATE),
    ),
    # a folded (obs-fold) value: its line breaks and runs of spaces become one space
    Case(
        "get-header-value-multiline",
        "GET",
        "/",
        _mine("My-Header1", "value1\n  value2\n     value3"),
        lines=(_HOST, "my-header1:value1 value2 value3", _DATE),
    ),
    Case(
        "get-header-value-order",
        "GET",
        "/",
        _mine("My-Header1", "value4", "value1", "value3", "value2"),
        lines=(_HOST, "my-header1:value4,value1,value3,value2", _DATE),
    ),
    # Trimall: leading and trailing whitespace dropped, inner runs squeezed, quotes kept
    Case(
        "get-header-value-trim",
        "GET",
        "/",
        (("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')),
        lines=(_HOST, "my-header1:value1", 'my-header2:"a b c"', _DATE),
    ),
    # the unreserved characters are never encoded
    Case("get-unreserved", "GET", "/" + _UNRESERVED, uri="/" + _UNRESERVED),
    # a raw UTF-8 path is encoded once (it was not encoded on the way in)
    Case("get-utf8", "GET", "/\u1234", uri="/%E1%88%B4"),
    Case("get-vanilla-empty-query-key", "GET", "/?Param1=value1", query="Param1=value1"),
    # sorted by the encoded names: "%" before letters, "Param" before "Param-3"; escapes kept as they are
    Case(
        "get-vanilla-query-order-encoded",
        "GET",
        "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        query="%E1%88%B4=Value1&Param=Value2&Param-3=Value3",
    ),
    Case(
        "get-vanilla-query-order-key-case",
        "GET",
        "/?Param2=value2&Param1=value1",
        query="Param1=value1&Param2=value2",
    ),
    # a repeated name: both pairs kept, ordered by value (upper case first)
    Case(
        "get-vanilla-query-order-key",
        "GET",
        "/?Param1=value2&Param1=Value1",
        query="Param1=Value1&Param1=value2",
    ),
    Case(
        "get-vanilla-query-order-value",
        "GET",
        "/?Param1=value2&Param1=value1",
        query="Param1=value1&Param1=value2",
    ),
    Case(
        "get-vanilla-query-unreserved",
        "GET",
        f"/?{_UNRESERVED}={_UNRESERVED}",
        query=f"{_UNRESERVED}={_UNRESERVED}",
    ),
    Case("get-vanilla-query", "GET", "/"),
    # a raw UTF-8 query name is encoded
    Case("get-vanilla-utf8-query", "GET", "/?\u1234=bar", query="%E1%88%B4=bar"),
    # the signer adds the token and signs it, in its sorted place
    Case(
        "get-vanilla-with-session-token",
        "GET",
        "/",
        token=TOKEN,
        lines=(_HOST, _DATE, f"x-amz-security-token:{TOKEN}"),
    ),
    Case("get-vanilla", "GET", "/"),
    # dot segments and empty segments removed, a trailing slash kept
    Case("normalize-path/get-relative-relative", "GET", "/example1/example2/../.."),
    Case("normalize-path/get-relative", "GET", "/example/.."),
    Case("normalize-path/get-slash-dot-slash", "GET", "/./"),
    Case("normalize-path/get-slash-pointless-dot", "GET", "/./example", uri="/example"),
    Case("normalize-path/get-slash", "GET", "//"),
    Case("normalize-path/get-slashes", "GET", "//example//", uri="/example/"),
    Case("normalize-path/get-space", "GET", "/example space/", uri="/example%20space/"),
    # a reserved character is percent-encoded
    Case("normalize-path/get-special-character", "GET", "/example/$delete", uri="/example/%24delete"),
    Case("post-header-key-case", "POST", "/"),
    Case(
        "post-header-key-sort",
        "POST",
        "/",
        _mine("My-Header1", "value1"),
        lines=(_HOST, "my-header1:value1", _DATE),
    ),
    # header values keep their case
    Case(
        "post-header-value-case",
        "POST",
        "/",
        _mine("My-Header1", "VALUE1"),
        lines=(_HOST, "my-header1:VALUE1", _DATE),
    ),
    # a token header added after signing is not part of the signature
    Case("post-sts-token/post-sts-header-after", "POST", "/", unsigned_token=STS_TOKEN),
    Case(
        "post-sts-token/post-sts-header-before",
        "POST",
        "/",
        token=STS_TOKEN,
        lines=(_HOST, _DATE, f"x-amz-security-token:{STS_TOKEN}"),
    ),
    Case("post-vanilla-empty-query-value", "POST", "/?Param1=value1", query="Param1=value1"),
    Case("post-vanilla-query", "POST", "/?Param1=value1", query="Param1=value1"),
    Case("post-vanilla", "POST", "/"),
    # the body is signed through its hash; the content type is an ordinary signed header
    Case(
        "post-x-www-form-urlencoded-parameters",
        "POST",
        "/",
        _mine("Content-Type", "application/x-www-form-urlencoded; charset=utf8"),
        body=_FORM,
        lines=("content-type:application/x-www-form-urlencoded; charset=utf8", _HOST, _DATE),
    ),
    Case(
        "post-x-www-form-urlencoded",
        "POST",
        "/",
        _mine("Content-Type", "application/x-www-form-urlencoded"),
        body=_FORM,
        lines=("content-type:application/x-www-form-urlencoded", _HOST, _DATE),
    ),
]
assert len(CASES) == 34 and len({case.name for case in CASES}) == 34
