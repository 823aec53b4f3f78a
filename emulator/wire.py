"""What SageMaker puts on the wire: rest-json error responses and event-stream messages.

Errors follow botocore's rest-json parser (``parsers.RestJSONParser``): the code comes from the
``x-amzn-ErrorType`` header (anything after ``:`` is dropped), the message from the body's
``message``/``Message``, and a modelled error's fields (``ModelError``'s ``OriginalStatusCode``,
``OriginalMessage``, ``LogStreamArn``) from body members of the same name. Status codes are those
of the ``sagemaker-runtime`` service model (``error.httpStatusCode``); ``ThrottlingException`` is
not modelled there and arrives as a generic 400, as AWS sends it.

The response stream is AWS's binary event-stream framing (``botocore/eventstream.py``): a 12-byte
prelude (total length, headers length, CRC32 of those 8 bytes), the headers, the payload, and a
CRC32 of everything before it.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from binascii import crc32

from smload import errors

ACCOUNT = "123456789012"  # the account id in messages and ARNs (AWS's documentation example)
# A stateful session's lifetime: the model container decides it on SageMaker; the emulator's say 20 min.
SESSION_TTL_S = 20 * 60

STATUS = {
    errors.VALIDATION_ERROR: 400,
    errors.THROTTLING: 400,
    errors.MODEL_ERROR: 424,
    errors.MODEL_NOT_READY: 429,
    errors.INTERNAL_FAILURE: 500,
    errors.SERVICE_UNAVAILABLE: 503,
    errors.INTERNAL_DEPENDENCY: 530,
}

REASON = {
    200: "OK",
    100: "Continue",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    414: "URI Too Long",
    424: "Failed Dependency",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    530: "Internal Dependency Failure",
}

# The message SageMaker gives a model's own failure (status 0: the model never answered in time).
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the "
    "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)

_FAULT_MESSAGES = {
    errors.VALIDATION_ERROR: "Request rejected (fault injected by the emulator).",
    errors.THROTTLING: "Rate exceeded",
    errors.MODEL_NOT_READY: "Model is not ready to serve requests yet; retry the request (fault injected by the emulator).",
    errors.INTERNAL_FAILURE: "An internal error occurred while processing the request (fault injected by the emulator).",
    errors.SERVICE_UNAVAILABLE: "Service Unavailable (fault injected by the emulator).",
    errors.INTERNAL_DEPENDENCY: "An internal dependency failed (fault injected by the emulator).",
}


def error_body(message: str) -> bytes:
    """The body of every error but ModelError: AWS's ``{"message": ...}`` (the code is in the header)."""
    return json.dumps({"message": message}).encode()


def model_error_body(region: str, endpoint: str, original_status: int, original_message: str) -> bytes:
    kind = "client" if 400 <= original_status < 500 else "server"
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    message = (
        f'Received {kind} error ({original_status}) from primary with message "{original_message}". '
        f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={group} "
        f"in account {ACCOUNT} for more information."
    )
    return json.dumps(
        {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{group}",
            "Message": message,
            "OriginalMessage": original_message,
            "OriginalStatusCode": original_status,
        }
    ).encode()


def fault_message(error: str) -> str:
    return _FAULT_MESSAGES.get(error, error)


# --- event stream ---------------------------------------------------------------------------

_STRING = 7  # header value type: a UTF-8 string with a 2-byte length


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += (
            struct.pack("B", len(raw_name))
            + raw_name
            + struct.pack(">BH", _STRING, len(raw_value))
            + raw_value
        )
    return bytes(out)


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = _headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", crc32(message) & 0xFFFFFFFF)


_PAYLOAD_PART_HEADERS = _headers(
    {":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"}
)
_PAYLOAD_PART_OVERHEAD = 12 + len(_PAYLOAD_PART_HEADERS) + 4


def payload_part(data: bytes) -> bytes:
    """``event_message`` for the one event a stream repeats per token: its headers encoded once."""
    prelude = _pack_lengths(len(data) + _PAYLOAD_PART_OVERHEAD, len(_PAYLOAD_PART_HEADERS))
    message = prelude + _pack_crc(crc32(prelude)) + _PAYLOAD_PART_HEADERS + data
    return message + _pack_crc(crc32(message))


_pack_lengths = struct.Struct(">II").pack
_pack_crc = struct.Struct(">I").pack


def stream_error(error: str, message: str, error_code: str | None = None) -> bytes:
    """A ``ModelStreamError`` or ``InternalStreamFailure`` event (an error after the stream began)."""
    body: dict = {"Message": message}
    if error_code:
        body["ErrorCode"] = error_code
    headers = {":exception-type": error, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, json.dumps(body).encode())


def split_parts(body: bytes, parts: int) -> list[bytes]:
    """``body`` in ``parts`` pieces of nearly equal size (some empty when the body is shorter)."""
    size, extra = divmod(len(body), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(body[start:end])
        start = end
    return out


def echoed(headers: dict[bytes, bytes], stream: bool) -> bytes:
    """What a SageMaker answer carries back of its request: ``CustomAttributes`` (both APIs) and, for
    ``InvokeEndpoint`` asked with ``SessionId: NEW_SESSION``, the new stateful session's id and expiry
    (``NewSessionId``, in the service model's ``<id>; Expires=<UTC time>`` form)."""
    out = b""
    custom = headers.get(b"x-amzn-sagemaker-custom-attributes")
    if custom is not None:
        out += b"X-Amzn-SageMaker-Custom-Attributes: " + custom + b"\r\n"
    if not stream and headers.get(b"x-amzn-sagemaker-session-id") == b"NEW_SESSION":
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + SESSION_TTL_S))
        out += b"X-Amzn-SageMaker-New-Session-Id: %s; Expires=%s\r\n" % (
            str(uuid.uuid4()).encode(),
            expires.encode(),
        )
    return out
