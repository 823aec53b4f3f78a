"""What the emulator puts on the wire, read back by botocore's own decoders."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import EventStreamBuffer

from smload.emulator import wire
from smload.emulator.server import json_body


def test_event_stream_messages_decode_with_botocore():
    buffer = EventStreamBuffer()
    parts = wire.split_parts(b"hello, streaming world", 5)
    data = b"".join(wire.payload_part(p) for p in parts) + wire.stream_error("ModelStreamError", "boom", "E1")
    # fed in awkward slices: framing must not depend on read boundaries
    for i in range(0, len(data), 7):
        buffer.add_data(data[i : i + 7])
    messages = list(buffer)
    assert [m.payload for m in messages[:5]] == parts
    assert all(
        m.headers[":event-type"] == "PayloadPart" and m.headers[":message-type"] == "event"
        for m in messages[:5]
    )
    assert messages[5].headers[":exception-type"] == "ModelStreamError"
    assert json.loads(messages[5].payload) == {"Message": "boom", "ErrorCode": "E1"}


@pytest.mark.parametrize("size, parts", [(0, 3), (2, 4), (10, 3), (1000, 8)])
def test_split_parts_keeps_every_byte(size, parts):
    body = bytes(range(256)) * 4
    pieces = wire.split_parts(body[:size], parts)
    assert len(pieces) == parts and b"".join(pieces) == body[:size]
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


@pytest.mark.parametrize("size", [2, 5, 17, 18, 19, 20, 21, 22, 100, 512, 4096])
def test_json_body_has_the_exact_size_and_parses(size):
    body = json_body(size)
    assert len(body) == size
    json.loads(body)


def test_model_error_body_fields():
    body = json.loads(wire.model_error_body("eu-west-1", "ep", 0, wire.TIMEOUT_MESSAGE))
    assert body["OriginalStatusCode"] == 0 and body["OriginalMessage"] == wire.TIMEOUT_MESSAGE
    assert body["LogStreamArn"] == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep"
    assert body["Message"].startswith("Received server error (0) from primary with message")
