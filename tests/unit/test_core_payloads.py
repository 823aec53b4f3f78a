"""Payload loading and checking (``--payload``), and the order bodies are handed out in."""

import hashlib
import json
import os
import resource

import pytest

from smload.invoke.payloads import MAX_BODY_BYTES, PayloadPicker, load
from smload.usage import MissingOption, UsageError


def test_one_file_content_type_by_extension(tmp_path):
    (tmp_path / "a.csv").write_text("1,2,3\n")
    [payload] = load(str(tmp_path / "a.csv"))
    assert payload.body == b"1,2,3\n"
    assert payload.content_type == "text/csv"
    assert payload.sha256 == hashlib.sha256(b"1,2,3\n").hexdigest()


def test_directory_each_file_one_body_sorted(tmp_path):
    (tmp_path / "b.json").write_text('{"b": 1}')
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / ".hidden").write_text("ignored")
    (tmp_path / "sub").mkdir()
    payloads = load(str(tmp_path))
    assert [(p.body, p.content_type) for p in payloads] == [
        (b"hello", "text/plain"),
        (b'{"b": 1}', "application/json"),
    ]


def test_content_type_option_overrides_extension(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    assert load(str(tmp_path), "application/x-custom")[0].content_type == "application/x-custom"
    assert load(str(tmp_path))[0].content_type == "application/octet-stream"


def test_json_lines_each_line_one_body(tmp_path):
    path = tmp_path / "bodies.jsonl"
    path.write_text('{"a": 1}\n\n  {"b": [1, 2]}  \r\n')
    payloads = load(str(path))
    assert [p.body for p in payloads] == [b'{"a": 1}', b'{"b": [1, 2]}']
    assert {p.content_type for p in payloads} == {"application/json"}
    assert all(p.sha256 for p in payloads)


def _file(name, data):
    def make(directory):
        path = directory / name
        path.write_bytes(data)
        return str(path)

    return make


def _empty_dir(directory):
    (directory / "empty").mkdir()
    return str(directory / "empty")


@pytest.mark.parametrize(
    "setup,expected",
    [
        (lambda d: None, "is required"),
        (lambda d: str(d / "missing.json"), "does not exist"),
        (_empty_dir, "has no files"),
        (_file("e.json", b""), "is empty"),
        (_file("bad.jsonl", b'{"ok": 1}\n{oops\n'), "bad.jsonl:2: invalid JSON"),
        (_file("blank.jsonl", b"\n\n"), "has no lines"),
        (_file("big.bin", b"x" * (MAX_BODY_BYTES + 1)), "over InvokeEndpoint's limit"),
    ],
)
def test_bad_payloads_are_usage_errors(tmp_path, setup, expected):
    with pytest.raises(UsageError) as err:
        load(setup(tmp_path))
    assert err.value.option == "--payload"
    assert expected in str(err.value)


def test_missing_payload_is_a_missing_option():
    with pytest.raises(MissingOption):
        load(None)


def test_dangling_symlink_in_directory_is_unreadable(tmp_path):
    (tmp_path / "ok.json").write_text("{}")
    os.symlink(tmp_path / "gone.json", tmp_path / "link.json")
    with pytest.raises(UsageError, match="link.json. is a broken symbolic link"):
        load(str(tmp_path))


def test_body_at_the_limit_is_fine(tmp_path):
    (tmp_path / "max.bin").write_bytes(b"x" * MAX_BODY_BYTES)
    assert len(load(str(tmp_path / "max.bin"))[0].body) == MAX_BODY_BYTES


def test_round_robin_in_order(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"i": i}) for i in range(3)))
    picker = PayloadPicker(load(str(path)), "round-robin")
    assert [json.loads(picker.next().body)["i"] for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_random_is_seedable_and_differs_per_worker(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"i": i}) for i in range(50)))
    payloads = load(str(path))

    def sequence(seed, stream):
        picker = PayloadPicker(payloads, "random", seed, stream)
        return [picker.next().body for _ in range(30)]

    assert sequence(7, 0) == sequence(7, 0)
    assert sequence(7, 0) != sequence(7, 1)
    assert sequence(7, 0) != sequence(8, 0)
    assert len(set(sequence(7, 0))) > 10


def _sparse(name: str, size: int):
    def make(directory):
        path = directory / name
        with path.open("wb") as f:
            f.truncate(size)  # sparse: the test needs no gigabyte of disk
        return str(path)

    return make


def _fifo(directory):
    os.mkfifo(directory / "pipe.json")
    return str(directory / "pipe.json")


def _loop(directory):
    (directory / "a.json").symlink_to(directory / "b.json")
    (directory / "b.json").symlink_to(directory / "a.json")
    return str(directory / "a.json")


@pytest.mark.parametrize(
    "setup,expected",
    [
        (_sparse("huge.bin", 1 << 30), "is 1,073,741,824 bytes, over InvokeEndpoint's limit"),
        (_sparse("huge.jsonl", (256 << 20) + 1), "over the limit of a JSON Lines file"),
        (lambda d: "/dev/zero", "is not a regular file"),
        (_fifo, "is not a regular file"),
        (_loop, "is a loop of symbolic links"),
    ],
)
def test_file_type_and_size_are_checked_before_reading(tmp_path, setup, expected):
    """Hardening item 12: a 1 GiB file took 1.1 GB of memory, /dev/zero a MemoryError, a FIFO hung, a
    symlink loop said 'does not exist'. Each is now one line, and nothing is read."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UsageError) as err:
        load(setup(tmp_path))
    assert err.value.option == "--payload" and expected in str(err.value), str(err.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB: nothing was read
