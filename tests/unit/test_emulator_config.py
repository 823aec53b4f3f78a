"""Configuration: defaults, flags and files give the same variants; every mistake names its field."""

from __future__ import annotations

import math

import pytest

from smload.emulator import config as cfg
from smload.emulator.cli import build_parser, load
from smload.usage import UsageError


def parse(*argv: str) -> cfg.Config:
    return load(build_parser().parse_args(list(argv)))


def test_flags_build_endpoints_in_order():
    config = parse(
        "--endpoint",
        "one",
        "--variant",
        "name=a,weight=3,instances=2,concurrency=4,latency_ms=25,latency_p99_ms=75",
        "--variant",
        "name=b,ModelError=0.01,ModelError(503)=0.02,drop_rate=0.001,stream_parts=3",
        "--endpoint",
        "two",
    )
    one, two = config.endpoints
    a, b = one.variants
    assert (a.weight, a.instances, a.concurrency, a.slots) == (3, 2, 4, 8)
    assert a.latency.median_ms == 25 and math.isclose(a.latency.sigma, math.log(3) / cfg.LOGNORMAL_Z99)
    assert b.faults.rates == {cfg.ErrorSpec("ModelError"): 0.01, cfg.ErrorSpec("ModelError", 503): 0.02}
    assert b.faults.drop_rate == 0.001 and b.stream.parts == 3
    assert [v.name for v in two.variants] == ["AllTraffic"]


def test_no_arguments_serve_the_bundled_example():
    config = parse()
    assert [v.name for v in config.endpoints[0].variants] == ["variant-a", "variant-b"]
    assert config.endpoints[0].name == "ab-test"


def test_file_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"endpoints": [{"name": "e", "variants": [{"name": "v", "instances": 3}]}]}')
    variant = cfg.load_file(path).endpoints[0].variants[0]
    assert variant.queue_limit == 300 and variant.queue.max_wait_ms == 60000
    assert variant.queue.on_full == cfg.ErrorSpec("ModelError", 503)
    assert variant.latency.p99_ms is None and variant.latency.sigma == 0.0


def test_file_access_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "endpoints: [{name: e, variants: [{name: v}]}]\n"
        "access_keys:\n  AKIDLONGTERM0000001: s1\n"
        "  ASIATEMPORARY000001: {secret: s2, session_token: t, expires_at: 1767225600}\n"
    )
    keys = cfg.load_file(path).access_keys
    assert keys["AKIDLONGTERM0000001"] == cfg.AccessKey("AKIDLONGTERM0000001", "s1")
    assert keys["ASIATEMPORARY000001"] == cfg.AccessKey("ASIATEMPORARY000001", "s2", "t", 1767225600.0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--config", "x.yaml", "--endpoint", "e"],
            "--endpoint: give either --config FILE or --endpoint/--variant flags",
        ),
        (
            ["--endpoint", "e", "--variant", "name=a,latency_ms=-1"],
            "--variant: latency_ms: must be a number >= 0",
        ),
        (
            ["--endpoint", "e", "--variant", "name=a,latency_ms=10,latency_p99_ms=5"],
            "--variant: latency_p99_ms: must be >= median_ms",
        ),
        (
            ["--endpoint", "e", "--variant", "ThrottlingException=0.7,ModelError=0.6"],
            "--variant: faults: the error rates and drop_rate add up to more than 1",
        ),
        (
            ["--endpoint", "e", "--variant", "name=a", "--variant", "name=a"],
            "--variant: name: duplicate variant name 'a'",
        ),
        (["--endpoint", "e", "--variant", "body=pdf"], "--variant: body: must be one of echo, fixed, json"),
        (["--endpoint", "e", "--port", "0"], "--port: must be 1-65535"),
    ],
)
def test_flag_errors(argv, message):
    with pytest.raises(UsageError) as caught:
        parse(*argv)
    assert str(caught.value).startswith(message), str(caught.value)


def test_effective_config_hides_secrets():
    config = parse("--endpoint", "e", "--access-key", "AKIDFLAGKEY00000001:secret:token:1767225600")
    shown = config.to_json()
    assert shown["access_keys"] == ["AKIDFLAGKEY00000001"] and "secret" not in str(shown)
    assert config.access_keys["AKIDFLAGKEY00000001"].session_token == "token"


@pytest.mark.parametrize("key_id", ["AKIDEXAMPLE", "akid_lower_case_00001", "A" * 128])
def test_access_key_ids_are_iams_pattern(key_id):
    """IAM's AccessKeyId is [\\w]+ (at most 128); AKIDEXAMPLE is AWS's documentation and test-suite key."""
    config = parse("--endpoint", "e", "--access-key", f"{key_id}:secret")
    assert config.access_keys[key_id] == cfg.AccessKey(key_id, "secret")


@pytest.mark.parametrize("key_id", ["A" * 129, "AKID-EXAMPLE", "AKID.EXAMPLE", "AKIDÉXAMPLE"])
def test_other_access_key_ids_are_refused(key_id):
    with pytest.raises(
        UsageError, match=r"^--access-key: an access key id is 1-128 letters, digits or underscores"
    ):
        parse("--endpoint", "e", "--access-key", f"{key_id}:secret")
