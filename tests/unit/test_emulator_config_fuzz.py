"""The configuration loader over values of wrong types and sizes (hypothesis): whatever a YAML or
JSON file holds at whatever place, loading it either gives a configuration the server can run
(its App builds, its startup line prints, its service times stay finite) or raises UsageError with
one short line. Any other exception would reach the user as a traceback and exit code 1."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from typing import Any
from unittest import mock

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smload.emulator import config as cfg
from smload.emulator.capacity import VariantRuntime
from smload.emulator.cli import describe
from smload.emulator.server import App
from smload.usage import UsageError

# Every field the loader reads, each with a valid value.
BASE: dict = {
    "region": "us-east-1",
    "strict_sigv4": False,
    "access_keys": {
        "AKIDLONGTERM0000001": "secret",
        "ASIATEMPORARY000001": {"secret": "s", "session_token": "t", "expires_at": 1767225600},
    },
    "endpoints": [
        {
            "name": "ab",
            "variants": [
                {
                    "name": "a",
                    "weight": 1,
                    "instances": 1,
                    "concurrency": 4,
                    "latency": {"median_ms": 20, "p99_ms": 60, "per_kib_ms": 0},
                    "queue": {
                        "max_depth": 64,
                        "max_wait_ms": 60000,
                        "on_full": "ModelError(503)",
                        "on_timeout": "ModelError(0)",
                    },
                    "response": {
                        "body": "json",
                        "fixed": "{}",
                        "json_bytes": 512,
                        "content_type": "application/json",
                    },
                    "stream": {"parts": 4, "part_delay_ms": 0, "error_rate": 0, "error": "ModelStreamError"},
                    "faults": {
                        "rates": {"ModelError": 0.01, "ThrottlingException": 0.01},
                        "model_error_status": 500,
                        "windows": [{"error": "ServiceUnavailable", "from_s": 1, "to_s": 2}],
                        "slow": {"rate": 0.01, "extra_ms": 100},
                        "drop_rate": 0.001,
                    },
                },
                {"name": "b", "latency": 5},
            ],
        }
    ],
}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


PATHS = _paths(BASE)

# Values of every type and of extreme sizes, alone or nested.
EXTREMES = [
    None,
    True,
    False,
    0,
    -1,
    2,
    4_000_000_000,
    2**63,
    10**400,
    -(10**400),
    1e308,
    -1e308,
    1e-308,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
    "",
    " ",
    "x" * 10_000,
    "a\nb",
    "a\r\nX-Injected: 1",
    "\ud800",
    "\x00",
    "ModelError",
    "ModelError(999)",
    "ModelStreamError",
    "echo",
    "json",
    "us-east-1\n",
    "ab\n",
    "-",
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59),
    dt.date(2026, 1, 1),
    b"\xff\xfe",
]
scalars = (
    st.sampled_from(EXTREMES)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=3)
    ),
    max_leaves=6,
)


def _with(doc: dict, path: tuple, value: Any, new_key: Any) -> Any:
    """``doc`` with the value at ``path`` replaced (or, when ``new_key`` is given and the place is a
    mapping, a new key added there); the root itself may be replaced."""
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    target = node[path[-1]]
    if new_key is not None and isinstance(target, dict):
        target[new_key] = value
    else:
        node[path[-1]] = value
    return doc


def _yaml(doc: Any) -> str:
    try:
        return yaml.dump(doc, Dumper=yaml.CSafeDumper)  # libyaml: fast
    except UnicodeEncodeError:  # a lone surrogate, which only the pure-Python dumper escapes
        return yaml.safe_dump(doc)


def _servable(config: cfg.Config) -> None:
    """What the server does with a configuration before and while it serves."""
    App(config)
    describe(config, "127.0.0.1", 8080)
    json.dumps(config.to_json())
    for endpoint in config.endpoints:
        for variant in endpoint.variants:
            runtime = VariantRuntime(endpoint.name, variant, None)
            for draw in (-8.6, 8.6):  # random.gauss's extremes
                with mock.patch("random.gauss", return_value=draw):
                    assert math.isfinite(runtime.service_time(6 * 1024 * 1024))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    value=values,
    new_key=st.none() | st.sampled_from(["x", 1, None]),
    kind=st.sampled_from(["yaml", "json"]),
)
def test_any_value_anywhere_loads_or_is_one_line(tmp_path_factory, path, value, new_key, kind):
    doc = _with(copy.deepcopy(BASE), path, value, new_key)
    if kind == "json":
        try:
            text = json.dumps(doc, ensure_ascii=True)
        except (TypeError, ValueError):  # dates, bytes and 10**400 have no JSON form: YAML has
            kind = "yaml"
    if kind == "yaml":
        text = _yaml(doc)
    path_ = tmp_path_factory.mktemp("fuzz") / f"c.{kind}"
    path_.write_text(text)
    try:
        config = cfg.load_file(path_)
    except UsageError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message and len(message) < 500, message
        return
    _servable(config)


def test_the_base_document_is_valid(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE))
    _servable(cfg.load_file(path))


def test_every_extreme_at_every_field(tmp_path):
    """The deterministic half: each extreme value at each place, in YAML (which writes them all)."""
    failures = []
    for path in PATHS:
        for value in EXTREMES:
            file = tmp_path / "grid.yaml"
            file.write_text(_yaml(_with(copy.deepcopy(BASE), path, value, None)))
            try:
                _servable(cfg.load_file(file))
            except UsageError as exc:
                if "\n" in str(exc) or len(str(exc)) >= 500:
                    failures.append((path, value, f"a message of {len(str(exc))} characters or lines"))
            except Exception as exc:  # noqa: BLE001 - any other exception is the failure this test looks for
                failures.append((path, repr(value)[:40], f"{type(exc).__name__}: {exc}"[:200]))
    assert not failures, "\n".join(map(str, failures[:20]))
