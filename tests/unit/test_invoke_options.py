"""The endpoint options' declarations (``smload.invoke.options``) against botocore's service model of
sagemaker-runtime: every header option names a real member, with the wire name each API gives it,
on exactly the APIs that take it; and the values the model allows are the values we accept."""

import re

import pytest
from botocore.loaders import create_loader
from botocore.model import ServiceModel

from smload import flags
from smload.invoke import options
from smload.record import INVOKE, STREAM
from smload.usage import UsageError

# botocore's own service model, through its loader: a Session would read the caller's AWS config
MODEL = ServiceModel(
    create_loader().load_service_model("sagemaker-runtime", "service-2"), "sagemaker-runtime"
)
OPERATIONS = {INVOKE: MODEL.operation_model(INVOKE), STREAM: MODEL.operation_model(STREAM)}


@pytest.mark.parametrize("option", options.HEADERS, ids=lambda o: o.flag)
def test_header_rows_match_the_service_model(option):
    member = option.extra["member"]
    taking = {api for api, op in OPERATIONS.items() if member in op.input_shape.members}
    assert set(option.extra["headers"]) == taking, f"{option.flag}: APIs"
    for api in taking:
        shape = OPERATIONS[api].input_shape.members[member]
        assert shape.serialization == {"location": "header", "name": option.extra["headers"][api]}, (
            option.flag,
            api,
        )


@pytest.mark.parametrize("option", options.HEADERS, ids=lambda o: o.flag)
def test_accepted_values_follow_the_models_rules(option):
    member = option.extra["member"]
    shape = OPERATIONS[INVOKE if INVOKE in option.extra["headers"] else STREAM].input_shape.members[member]
    longest = "a" * shape.metadata["max"]
    assert option.parse(longest) == longest
    with pytest.raises(ValueError):
        option.parse(longest + "a")
    pattern = (
        shape.metadata["pattern"]
        .replace(r"[\p{Print}]", r"[\x20-\x7e]")
        .replace(r"\p{ASCII}", r"[\x00-\x7f]")
    )
    pattern = pattern.replace(r"\A", "^").replace(r"\z", "$")
    for value in ("variant-b", "NEW_SESSION", "a b", "x" * 10, "-leading", "ü"):
        ours = _accepts(option, value)
        if ours:  # what we accept, the service accepts (we may be stricter: no control characters)
            assert re.fullmatch(pattern, value) or re.match(pattern, value), (option.flag, value)


def _accepts(option, value) -> bool:
    try:
        option.parse(value)
        return True
    except ValueError:
        return False


def test_a_header_the_api_does_not_take_is_refused_with_the_option_named(tmp_path):
    values = {o.dest: o.default for o in options.OPTIONS}
    values.update(stream=True, enable_explanations="`true`")
    with pytest.raises(UsageError, match="--enable-explanations: cannot be combined with --stream"):
        options._ordered(values, STREAM)


def test_every_option_is_in_the_reference_table():
    table = flags.markdown(["endpoint"])
    for option in options.OPTIONS:
        assert f"`{option.flag}`" in table and f"`{option.env}`" in table
