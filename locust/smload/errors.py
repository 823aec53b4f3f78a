"""The closed set of error types (DESIGN.md): the failure message of a Locust request and the
``error_type`` label of every metric. Import-light on purpose: the emulator uses it too, and
must not import Locust (whose import monkey-patches the process for gevent)."""

MODEL_ERROR = "ModelError"  # reported as ModelError(<original status>), e.g. ModelError(500)
VALIDATION_ERROR = "ValidationError"
THROTTLING = "ThrottlingException"
MODEL_NOT_READY = "ModelNotReadyException"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
INTERNAL_FAILURE = "InternalFailure"
INTERNAL_DEPENDENCY = "InternalDependencyException"
ACCESS_DENIED = "AccessDenied"  # every signature or credential error
TIMEOUT = "Timeout"
CONNECTION_ERROR = "ConnectionError"
HTTP_ERROR = "HTTPError"  # reported as HTTPError(<status>) for anything else

# Errors an endpoint answers with; the emulator can inject each of them.
SERVICE_ERRORS = (
    MODEL_ERROR,
    VALIDATION_ERROR,
    THROTTLING,
    MODEL_NOT_READY,
    SERVICE_UNAVAILABLE,
    INTERNAL_FAILURE,
    INTERNAL_DEPENDENCY,
)
ERROR_TYPES = SERVICE_ERRORS + (ACCESS_DENIED, TIMEOUT, CONNECTION_ERROR, HTTP_ERROR)


def model_error(original_status: int) -> str:
    return f"{MODEL_ERROR}({original_status})"


def http_error(status: int) -> str:
    return f"{HTTP_ERROR}({status})"


def base_type(error: str) -> str:
    """``ModelError(500)`` -> ``ModelError``: the label value used by metrics."""
    return error.split("(", 1)[0]


# An exception no client of ours raises (e.g. a custom locustfile's own failure): kept out of the
# set above so that a dashboard never mistakes it for an endpoint's answer.
OTHER = "Other"

# AWS error codes (x-amzn-ErrorType, or the JSON body's code/__type) -> our error type.
_AUTH_CODES = (
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidAccessKeyId",
    "AuthFailure",
    "UnauthorizedOperation",
    "NotAuthorized",
    "InvalidToken",
    "AuthorizationError",
)
_THROTTLING_CODES = (
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
)
_CODE_TO_TYPE = {
    **{code: ACCESS_DENIED for code in _AUTH_CODES},
    **{code: THROTTLING for code in _THROTTLING_CODES},
    "ValidationError": VALIDATION_ERROR,
    "ValidationException": VALIDATION_ERROR,
    "ModelNotReadyException": MODEL_NOT_READY,
    "ServiceUnavailable": SERVICE_UNAVAILABLE,
    "ServiceUnavailableException": SERVICE_UNAVAILABLE,
    "InternalFailure": INTERNAL_FAILURE,
    "InternalServerError": INTERNAL_FAILURE,
    "InternalServerException": INTERNAL_FAILURE,
    "InternalError": INTERNAL_FAILURE,
    "InternalStreamFailure": INTERNAL_FAILURE,
    "InternalDependencyException": INTERNAL_DEPENDENCY,
    "ModelStreamError": MODEL_ERROR,  # an error event in a response stream: there is no original status
}


def error_code(header: str | None, body: dict | None, status: int) -> str:
    """The AWS error code of an error response, found where botocore's rest-json parser looks:
    the ``x-amzn-ErrorType`` header, else the body's ``code``/``Code``, else its ``__type``."""
    code = header
    if not code and body:
        code = body.get("code") or body.get("Code") or body.get("__type")
    if not code or not isinstance(code, str):
        return str(status)
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


def from_error_code(code: str, status: int | None, original_status: int | None = None) -> str:
    """Our error type for an endpoint's error answer (``ModelError(500)``, ``AccessDenied``, ...)."""
    if code == MODEL_ERROR:
        return model_error(original_status) if original_status else MODEL_ERROR
    if code in _CODE_TO_TYPE:
        return _CODE_TO_TYPE[code]
    return http_error(status) if status else OTHER


def _known(text: str) -> bool:
    return base_type(text) in ERROR_TYPES or text == OTHER


def classify(exc: BaseException | str | None) -> str:
    """Map any request failure to the closed set: our own failures (their ``str()`` already is the
    type), botocore's ``ClientError``/timeouts/connection errors, socket and gevent errors, and the
    error strings Locust keeps on the master. Matches class names, not classes, so that this module
    imports neither botocore nor gevent."""
    if exc is None:
        return OTHER
    if isinstance(exc, str):
        text = exc.strip()
        return text if _known(text) else OTHER
    error_type = getattr(exc, "error_type", None)
    if isinstance(error_type, str):
        return error_type
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:  # botocore.exceptions.ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = response["Error"].get("Code") or str(status)
        return from_error_code(code, status, response.get("OriginalStatusCode"))
    names = [cls.__name__ for cls in type(exc).__mro__]
    if any("Timeout" in name or name == "timeout" for name in names):
        return TIMEOUT
    if any(name in _CONNECTION_CLASSES for name in names):
        return CONNECTION_ERROR
    text = str(exc).strip()  # e.g. Exception("ThrottlingException") raised by a custom locustfile
    return text if _known(text) else OTHER


# Class names (anywhere in an exception's MRO) of transport failures: builtins (OSError covers
# sockets and ssl), botocore's HTTPClientError/ConnectionError family, geventhttpclient's parse errors.
_CONNECTION_CLASSES = frozenset(
    (
        "OSError",
        "ConnectionError",
        "HTTPClientError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "HTTPParseError",
        "HTTPConnectionClosed",
        "SSLError",
        "ProtocolError",
        "ResponseStreamingError",
        "IncompleteRead",
        "RemoteDisconnected",
        "EOFError",
    )
)


class RequestFailure(Exception):
    """The ``exception`` of a failed request's Locust event. Its ``str()`` and ``repr()`` are exactly
    the error type (``ModelError(500)``), so that Locust's failures table, which keys on ``repr``,
    shows one row per type; the endpoint's own message stays available as ``detail``."""

    def __init__(self, error_type: str, detail: str = ""):
        super().__init__(error_type)
        self.error_type = error_type
        self.detail = detail

    def __str__(self) -> str:
        return self.error_type

    __repr__ = __str__

    def __reduce__(self):
        return (type(self), (self.error_type, self.detail))
