"""Request bodies for ``--payload``: one file, a directory (each file one body), or a JSON Lines
file (each line one body). Everything is read and checked at start-up, so that a bad file stops
the test before the first request; each body's SHA-256 is computed once, here, for SigV4.

Import-light (no Locust, no botocore): the master validates with it before anything is spawned.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mimetypes
import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path

from smload.usage import MissingOption, UsageError

OPTION = "--payload"
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit on a request body
MAX_JSON_LINES_BYTES = 256 * 1024 * 1024
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
ORDERS = ("random", "round-robin")

# Extensions mimetypes does not know (or knows differently) that inference payloads commonly use.
_CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".ndjson": "application/jsonlines",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".npy": "application/x-npy",
    ".parquet": "application/x-parquet",
    ".recordio": "application/x-recordio-protobuf",
    ".pb": "application/x-protobuf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".wav": "audio/wav",
}


@dataclass(frozen=True)
class Payload:
    """One request body, ready to send: its bytes, content type and SigV4 payload hash."""

    body: bytes
    content_type: str
    sha256: str = field(default="", compare=False)
    source: str = field(default="", compare=False)  # file (and line) it came from, for messages
    prompt_tokens: int | None = field(default=None, compare=False)  # LLM prompts: counted by --tokenizer

    @classmethod
    def of(
        cls, body: bytes | str, content_type: str, source: str = "", prompt_tokens: int | None = None
    ) -> Payload:
        if isinstance(body, str):
            body = body.encode()
        return cls(body, content_type, hashlib.sha256(body).hexdigest(), source, prompt_tokens)


def content_type_for(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or DEFAULT_CONTENT_TYPE


def _stat(path: Path) -> os.stat_result:
    """The file's status, following links, with one clear line for what is not a readable path."""
    try:
        return path.stat()
    except FileNotFoundError:
        what = "a broken symbolic link" if path.is_symlink() else "does not exist"
        raise UsageError(
            OPTION,
            f"{str(path)!r} {'is ' if path.is_symlink() else ''}{what}: give a file, a "
            "directory of files or a .jsonl file",
        ) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UsageError(OPTION, f"{str(path)!r} is a loop of symbolic links: give a file") from None
        raise UsageError(OPTION, f"cannot read {str(path)!r}: {err.strerror or err}") from None


def _read(path: Path, limit: int, what: str) -> bytes:
    """The whole file, its type and size checked before a byte is read (a FIFO would block, /dev/zero never end)."""
    status = _stat(path)
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(
            OPTION, f"{str(path)!r} is not a regular file (a pipe, device or socket): give a file"
        )
    if status.st_size > limit:
        _too_big(repr(str(path)), status.st_size, limit, what)
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)  # the file may have grown since
    except PermissionError:
        raise UsageError(OPTION, f"cannot read {str(path)!r}: permission denied") from None
    except OSError as err:
        raise UsageError(OPTION, f"cannot read {str(path)!r}: {err.strerror or err}") from None
    if len(data) > limit:
        _too_big(repr(str(path)), len(data), limit, what)
    return data


def _too_big(source: str, size: int, limit: int, what: str) -> None:
    raise UsageError(OPTION, f"{source} is {size:,} bytes, over {what} of {limit:,} bytes: make it smaller")


def _check_size(body: bytes, source: str) -> None:
    if len(body) > MAX_BODY_BYTES:
        _too_big(source, len(body), MAX_BODY_BYTES, "InvokeEndpoint's limit (6 MiB)")


def _json_lines(path: Path, content_type: str | None) -> list[Payload]:
    data = _read(
        path, MAX_JSON_LINES_BYTES, "the limit of a JSON Lines file (256 MiB, held in memory by every worker)"
    )
    payloads = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        try:
            json.loads(line)
        except ValueError as err:
            raise UsageError(
                OPTION, f"{source}: invalid JSON ({err}): each line of a JSON Lines file is one request body"
            ) from None
        _check_size(line, source)
        payloads.append(Payload.of(line.strip(), content_type or "application/json", source))
    if not payloads:
        raise UsageError(
            OPTION, f"{str(path)!r} has no lines: a JSON Lines file needs one JSON request body per line"
        )
    return payloads


def _one_file(path: Path, content_type: str | None) -> Payload:
    body = _read(path, MAX_BODY_BYTES, "InvokeEndpoint's limit (6 MiB)")
    if not body:
        raise UsageError(OPTION, f"{str(path)!r} is empty: InvokeEndpoint needs a request body")
    return Payload.of(body, content_type or content_type_for(path), str(path))


def load(spec: str | None, content_type: str | None = None) -> list[Payload]:
    """Read and check every body that ``--payload spec`` names; raise UsageError on bad input."""
    if not spec:
        raise MissingOption(
            OPTION, "is required: give a file, a directory of files or a .jsonl file of request bodies"
        )
    path = Path(spec).expanduser()
    if stat.S_ISDIR(_stat(path).st_mode):
        try:
            # symlinks count even when broken: a dangling link is an unreadable file, not a skipped one
            files = sorted(
                p for p in path.iterdir() if not p.name.startswith(".") and (p.is_file() or p.is_symlink())
            )
        except OSError as err:
            raise UsageError(OPTION, f"cannot list {spec!r}: {err.strerror or err}") from None
        if not files:
            raise UsageError(OPTION, f"directory {spec!r} has no files: put one request body per file in it")
        return [_one_file(p, content_type) for p in files]
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return _json_lines(path, content_type)
    return [_one_file(path, content_type)]


class PayloadPicker:
    """Hands out the next body: ``round-robin`` in file (and line) order, or ``random`` with an
    optional seed (each worker derives its own stream from it, so workers do not send in lockstep)."""

    def __init__(
        self, payloads: list[Payload], order: str = "random", seed: int | None = None, stream: int = 0
    ):
        if not payloads:
            raise ValueError("no payloads")
        self.payloads = payloads
        self.order = order
        self._next_index = 0
        self._random = random.Random(None if seed is None else f"{seed}/{stream}")
        if len(payloads) == 1:
            self.next = self._only
        elif order == "round-robin":
            self.next = self._round_robin
        else:
            self.next = self._random_choice

    def _only(self) -> Payload:
        return self.payloads[0]

    def _round_robin(self) -> Payload:
        index = self._next_index
        self._next_index = (index + 1) % len(self.payloads)
        return self.payloads[index]

    def _random_choice(self) -> Payload:
        return self.payloads[self._random.randrange(len(self.payloads))]
