"""Raw HTTP/1.1 on a socket, for tests that send what no HTTP client library would: pipelined
requests, oversized or malformed heads. Answers are read by their Content-Length (the emulator's
non-streaming answers always carry one)."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

AUTH = (
    b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
    b"SignedHeaders=host, Signature=00\r\n"
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def invocation(endpoint: bytes, body: bytes = b"{}", headers: bytes = b"", auth: bool = True) -> bytes:
    """A well-formed ``POST /endpoints/{endpoint}/invocations`` (a well-formed, unverified signature)."""
    return b"POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        endpoint,
        AUTH if auth else b"",
        headers,
        len(body),
        body,
    )


def parse_answers(buf: bytes) -> tuple[list[Answer], bytes]:
    """The complete answers at the start of ``buf``, and what is left of it."""
    answers = []
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        answers.append(Answer(int(lines[0].split()[1]), headers, rest[:length]))
        buf = rest[length:]
    return answers, buf


def exchange(port: int, data: bytes, answers: int, timeout: float = 10.0) -> tuple[list[Answer], bool]:
    """Send ``data`` on one connection; read until ``answers`` answers came, or the server closed.
    Returns the answers and whether the server closed the connection (waited for briefly after the
    last expected answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        got: list[Answer] = []
        buf = b""
        closed = False
        while len(got) < answers:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            more, buf = parse_answers(buf + chunk)
            got += more
        if not closed:
            sock.settimeout(0.5)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
        return got, closed


class Probe:
    """A well-formed client in its own process (``tests/tools/probe.py``) invoking ``endpoint``
    every 5 ms, while a test abuses the server; ``with Probe(...) as probe:`` then ``probe.results``
    (status, seconds, time.monotonic() at its start) for every request it made."""

    def __init__(self, port: int, endpoint: str, get: str | None = None) -> None:
        """``get``: GET that path instead (``endpoint`` is then "GET"), any 200 being right."""
        self.args = [
            sys.executable,
            str(Path(__file__).resolve().parent.parent / "tools" / "probe.py"),
            str(port),
            endpoint,
            *([get] if get else []),
        ]
        self.results: list[tuple[int, float, float]] = []

    def __enter__(self) -> Probe:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            out, _ = self.proc.communicate("", timeout=60)  # stdin closes: it stops and reports
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.results = [
            (int(status), float(seconds), float(at))
            for status, seconds, at in (line.split() for line in out.splitlines())
        ]

    @property
    def statuses(self) -> set[int]:
        return {status for status, _, _ in self.results}

    @property
    def slowest(self) -> tuple[float, float]:
        """The slowest request: (seconds, time.monotonic() at its start)."""
        return max((seconds, at) for _, seconds, at in self.results)
