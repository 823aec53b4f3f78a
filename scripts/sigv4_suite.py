"""Run our SigV4 signer (``smload.invoke.sigv4``: its rules and its Signer) and the emulator's strict
verifier over AWS's own SigV4 test suite files, where a checkout has them:

    .venv/bin/python scripts/sigv4_suite.py path/to/aws4_testsuite

The directory holds one folder per vector with ``NAME.req`` (the raw request), ``NAME.creq`` (its
canonical request) and ``NAME.authz`` (its Authorization header), as botocore keeps it in
``tests/unit/auth/aws4_testsuite`` (from awslabs/aws-c-auth's ``aws-sig-v4-test-suite``). Those files
are not part of this repository; the unit tests run equivalent cases (``tests/testkit/sigv4_suite.py``).
Prints a line per vector and exits 1 unless every check passed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from smload.emulator import sigv4 as verifier_sigv4
from smload.emulator.config import AccessKey
from smload.invoke import sigv4

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AMZ_DATE, EPOCH, REGION, SERVICE = "20150830T123600Z", 1440938160.0, "us-east-1", "service"


def parse(raw: str) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """(method, target, headers in order, body); a line starting with whitespace continues the
    previous header's value (obs-fold)."""
    head, _, body = raw.partition("\n\n")
    request_line, *lines = head.split("\n")
    method, target = request_line.split(" ")[0], request_line.rsplit(" ", 1)[0].split(" ", 1)[1]
    headers: list[tuple[str, str]] = []
    for line in filter(None, lines):  # some files end their head with a newline and no blank line
        if line[:1] in (" ", "\t"):
            name, value = headers.pop()
            headers.append((name, f"{value}\n{line}"))
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, target, headers, body.encode()


def check(folder: Path) -> list[str]:
    """The failed checks of one vector (rules, signer, verifier), none if all passed."""
    name = folder.name
    read = lambda suffix: (folder / f"{name}{suffix}").read_text(encoding="utf-8").replace("\r", "")  # noqa: E731
    method, target, headers, body = parse(read(".req"))
    creq, authz = read(".creq"), read(".authz")
    path, _, query = target.partition("?")
    token = next(
        (line.partition(":")[2] for line in creq.split("\n") if line.startswith("x-amz-security-token:")),
        None,
    )
    sent_token = dict((n.lower(), v) for n, v in headers).get("x-amz-security-token")
    signed = (
        headers if token is None or sent_token is not None else [*headers, ("X-Amz-Security-Token", token)]
    )
    payload = hashlib.sha256(body).hexdigest()
    failed = []

    canonical = sigv4.canonical_request(method, path, query, signed, payload)
    names = sigv4.canonical_headers(signed)[1]
    signature = sigv4.signature(SECRET_KEY, AMZ_DATE, REGION, SERVICE, canonical)
    if (
        canonical != creq
        or sigv4.authorization(ACCESS_KEY, names, signature, AMZ_DATE, REGION, SERVICE) != authz
    ):
        failed.append("rules")

    if path.isascii() and " " not in path:  # a request line the Signer can send as it is
        own = {"host", "x-amz-date", "x-amz-security-token", "content-type"}
        content_type = dict((n.lower(), v) for n, v in headers).get("content-type")
        extra = [(n, " ".join(v.split("\n"))) for n, v in headers if n.lower() not in own]
        signer = sigv4.Signer(
            REGION,
            method,
            dict((n.lower(), v) for n, v in headers)["host"],
            path,
            extra,
            service=SERVICE,
            query=query,
        )
        head = signer.sign(ACCESS_KEY, SECRET_KEY, token, content_type, payload, len(body), now=EPOCH).head
        if f"\r\nAuthorization: {authz}\r\n" not in head:
            failed.append("signer")

    received: dict[str, str] = {}
    for header, value in [
        *headers,
        *([] if sent_token or token is None else [("X-Amz-Security-Token", token)]),
        ("Authorization", authz),
    ]:
        header = header.lower()
        received[header] = f"{received[header]},{value}" if header in received else value
    key = AccessKey(ACCESS_KEY, SECRET_KEY, session_token=received.get("x-amz-security-token"))
    verifier = verifier_sigv4.Verifier({ACCESS_KEY: key}, REGION, SERVICE, clock=lambda: EPOCH)
    if verifier.verify(method, path, query, received, body) is not None:
        failed.append("verifier")
    return failed


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(
            "usage: sigv4_suite.py DIRECTORY (AWS's SigV4 test suite: NAME/NAME.req, .creq, .authz)",
            file=sys.stderr,
        )
        return 2
    folders = sorted(req.parent for req in Path(argv[0]).rglob("*.req"))
    bad = 0
    for folder in folders:
        failed = check(folder)
        bad += bool(failed)
        print(f"{'FAIL ' + ','.join(failed) if failed else 'ok':<22} {folder.relative_to(argv[0])}")
    print(f"{len(folders) - bad} of {len(folders)} vectors pass every check")
    return 1 if bad or not folders else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
