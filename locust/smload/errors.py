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
