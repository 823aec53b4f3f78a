"""The emulator's autoscaling block and time_scale: the bundled example reads as documented, policy
files are found next to the configuration, and every mistake is one line naming its field."""

import json

import pytest

from smload import scaling
from smload.emulator import config as cfg
from smload.emulator.cli import build_parser, describe, load
from smload.usage import UsageError

POLICY = {
    "TargetValue": 7680.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
}


def write(tmp_path, autoscaling, variant=None, top=None):
    doc = {
        **(top or {}),
        "endpoints": [
            {
                "name": "e",
                "variants": [{"name": "v", "instances": 2, **(variant or {}), "autoscaling": autoscaling}],
            }
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def test_the_bundled_example():
    config = load(build_parser().parse_args(["--config", "emulator/examples/autoscaling.yaml"]))
    variant = config.endpoints[0].variants[0]
    assert config.time_scale == 60.0 and variant.instances == 1
    spec = variant.autoscaling
    assert spec.limits == scaling.Limits(1, 4, 120.0)
    (policy,) = spec.policies
    assert (policy.name, policy.metric, policy.target) == (
        "invocations",
        scaling.INVOCATIONS_PER_INSTANCE,
        7680.0,
    )
    shown = config.to_json()["endpoints"][0]["variants"][0]["autoscaling"]
    assert shown["max_capacity"] == 4 and shown["policies"][0]["document"]["PolicyName"] == "invocations"
    assert (
        "    autoscaling 1..4, in service 120 s after a decision, time scale 60: target tracking "
        "SageMakerVariantInvocationsPerInstance = 7680"
    ) in describe(config, "127.0.0.1", 8080)


def test_policy_files_next_to_the_configuration(tmp_path):
    (tmp_path / "scaling-policy-v-invocations.json").write_text(json.dumps(POLICY))
    path = write(tmp_path, {"max_capacity": 4, "policies": [{"file": "scaling-policy-v-invocations.json"}]})
    variant = cfg.load_file(path).endpoints[0].variants[0]
    assert [p.name for p in variant.autoscaling.policies] == ["scaling-policy-v-invocations"]
    assert variant.autoscaling.limits.min_capacity == 2  # default: the instances


def test_variants_without_autoscaling_show_none():
    config = load(build_parser().parse_args(["--endpoint", "e"]))
    assert "autoscaling" not in config.to_json()["endpoints"][0]["variants"][0]
    assert config.time_scale == 1.0


@pytest.mark.parametrize(
    "autoscaling, variant, top, message",
    [
        (
            {"policies": [POLICY]},
            None,
            None,
            "c.yaml: endpoints[0].variants[0].autoscaling.max_capacity: is required",
        ),
        (
            {"max_capacity": 1, "policies": [POLICY]},
            None,
            None,
            "c.yaml: endpoints[0].variants[0].autoscaling: need min_capacity (2) <= instances (2) <= max_capacity (1)",
        ),
        (
            {"max_capacity": 4, "policies": []},
            None,
            None,
            "autoscaling.policies: must be a list of at least one",
        ),
        (
            {"max_capacity": 4, "policies": [dict(POLICY, TargetValue=0)]},
            None,
            None,
            "c.yaml: endpoints[0].variants[0].autoscaling.policies[0]: TargetValue must be a number above 0",
        ),
        (
            {"max_capacity": 4, "policies": [{"file": "missing.json"}]},
            None,
            None,
            "c.yaml: endpoints[0].variants[0].autoscaling.policies[0].file: cannot read",
        ),
        (
            {"max_capacity": 4, "startup_s": -1, "policies": [POLICY]},
            None,
            None,
            "autoscaling.startup_s: must be a number >= 0",
        ),
        ({"max_capacity": 4, "cooldown": 5, "policies": [POLICY]}, None, None, "unknown key 'cooldown'"),
        (
            {"max_capacity": 4, "policies": [POLICY]},
            None,
            {"time_scale": 0},
            "c.yaml: time_scale: must be a number > 0",
        ),
        (
            {"max_capacity": 4, "policies": [POLICY]},
            {"llm": {"max_batch": 8}},
            None,
            "autoscaling is not emulated for LLM variants and components yet",
        ),
    ],
)
def test_mistakes_name_their_field(tmp_path, autoscaling, variant, top, message):
    with pytest.raises(UsageError) as caught:
        cfg.load_file(write(tmp_path, autoscaling, variant, top))
    text = str(caught.value)
    assert message in text and "\n" not in text, text
