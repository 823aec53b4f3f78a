"""The containers' Locust settings, as the chart renders them (``LOCUST_*`` variables and
arguments), parsed by Locust's own parser with the bundled locustfile's options loaded (the load
generator's, the exporter's, the checks'), then read by each option's own declaration
(``smload.flags``): every variable is one Locust knows, every argument is accepted, and each value
lands on the option it is meant for, typed as the load generator checks it. A misspelt variable would
otherwise be ignored without a word."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from testkit.helmchart import MASTER, MATRIX, WORKER, container, find, render
from testkit.support import LOCUSTFILE, REPO

# Runs in a subprocess: importing Locust monkey-patches the process for gevent.
PARSE = r"""
import importlib.util, json, sys
from locust import argument_parser
spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))   # registers the plugins' options
from smload import flags
parser = argument_parser.get_parser()
known = sorted({a.env_var for a in parser._actions if getattr(a, "env_var", None)})
out = []
for case in json.load(sys.stdin):
    try:
        parsed = parser.parse_args(case["args"], env_vars=case["env"])
        values = {k: v for k, v in vars(parsed).items() if isinstance(v, (str, int, float, bool, list, type(None)))}
        values.update({o.dest: o.read(parsed) for g in flags.groups() for o in g.options if not o.required})
        out.append({"parsed": values})
    except SystemExit as exit:
        out.append({"error": exit.code})
print(json.dumps({"env_vars": known, "results": out}, default=repr))  # typed values (an LLM distribution) as text
"""


def parse(containers: list[dict]) -> tuple[set[str], list[dict]]:
    cases = [
        {"args": c.get("args", []), "env": {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}}
        for c in containers
    ]
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(LOCUSTFILE)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    for case, outcome in zip(cases, answer["results"], strict=True):
        assert "error" not in outcome, f"Locust refuses {case}:\n{result.stderr}"
    return set(answer["env_vars"]), [o["parsed"] for o in answer["results"]]


@pytest.fixture(scope="module")
def rendered_containers() -> dict[str, tuple[dict, dict]]:
    out = {}
    for case, values in MATRIX.items():
        objects = render(values)
        kind = "Job" if values.get("mode") == "job" else "Deployment"
        out[case] = (container(find(objects, kind, MASTER)), container(find(objects, kind, WORKER)))
    return out


def test_every_variable_and_argument_is_a_locust_option(rendered_containers):
    containers = [c for pair in rendered_containers.values() for c in pair]
    known, _ = parse(containers)
    for c in containers:
        ours = {e["name"] for e in c["env"] if e["name"].startswith("LOCUST_")}
        assert ours <= known, f"{c['name']}: Locust knows no {sorted(ours - known)}"


def test_values_land_on_their_options(rendered_containers):
    master, worker = rendered_containers["everything"]
    job_master, job_worker = rendered_containers["job"]
    _, (m, w, jm, jw) = parse([master, worker, job_master, job_worker])
    assert (m["master"], m["worker"], m["enable_rebalancing"], m["headless"]) == (True, False, True, False)
    assert (m["num_users"], m["spawn_rate"], m["stop_timeout"]) == (10, 1.0, 5)
    assert m["run_time"] in ("30m", 1800)  # parsed to seconds once the checks' plugin is loaded
    assert (m["web_port"], m["master_bind_port"], m["metrics_port"], m["metrics_host"]) == (
        8089,
        5557,
        9646,
        "0.0.0.0",
    )
    assert (m["endpoint_name"], m["region"], m["endpoint_url"]) == (
        "my-endpoint",
        "us-east-1",
        "https://runtime.sagemaker.us-east-1.amazonaws.com",
    )
    assert (m["target_variant"], m["custom_attributes"], m["accept"]) == (
        "variant-b",
        "a=b",
        "application/json",
    )
    assert (m["request_timeout"], m["connect_timeout"], m["client"], m["stream"]) == (
        30.0,
        2.5,
        "boto3",
        True,
    )
    assert m["role_arn"] == "arn:aws:iam::123456789012:role/loadtest"
    assert m["payload"] == "/opt/smload/payloads/small.json"
    assert m["check"] == ["p99 < 1s; error_rate < 1%"]  # one value, which the checks split at ';'

    assert (m["session_id"], m["inference_id"], m["enable_explanations"]) == (
        "NEW_SESSION",
        "nightly-42",
        "`true`",
    )
    assert m["loglevel"] == "DEBUG"
    assert (m["cloudwatch"], m["cloudwatch_interval"]) == (True, 30.0)

    assert (w["worker"], w["master"], w["master_host"], w["master_port"]) == (True, False, MASTER, 5557)
    assert w["endpoint_name"] is None  # the master sends the test's options with every spawn message

    assert (jm["headless"], jm["expect_workers"], jm["expect_workers_max_wait"]) == (True, 4, 300)
    assert jm["run_time"] in ("10m", 600)
    assert (jm["html_file"], jm["csv_prefix"], jm["json_file"]) == (
        "/var/lib/smload/locust.html",
        "/var/lib/smload/locust",
        "/var/lib/smload/locust",
    )
    assert jm["report"] == "/var/lib/smload"
    assert jw["worker"] is True and jw["master_host"] == MASTER


def test_every_declared_option_can_be_set_from_the_chart():
    """The chart's env mapping against the declarations: each LOCUST_* variable the chart sets is a
    declared option's, and any declared option (the ones without a named value too) is reachable
    through ``options`` with the variable its declaration names."""
    from smload import flags
    from smload.calibration import options as _c  # noqa: F401 - registers the groups, as the plugin does
    from smload.invoke import options as _e  # noqa: F401
    from smload.run import options as _v  # noqa: F401

    declared = {o.env: o for g in flags.groups() for o in g.options}
    every = {o.flag.lstrip("-"): "x" for o in declared.values()}
    master = container(find(render({"options": every}), "Deployment", MASTER))
    env = {e["name"]: e.get("value") for e in master["env"]}
    for variable, option in declared.items():
        assert env.get(variable) == "x", f"options.{option.flag.lstrip('-')} does not set {variable}"


# Runs in a subprocess too: the rendered variables through Locust's parser, then the load generator's
# own check of the endpoint options (smload.invoke.options.build: the LLM prompts, the tokenizer and
# dataset files, the --payload rule), as the master runs it before the first spawn.
CHECK = r"""
import importlib.util, json, sys
from locust import argument_parser
spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from smload import flags
case = json.load(sys.stdin)
settings = flags.parse(argument_parser.get_parser().parse_args([], env_vars=case["env"]), only=["endpoint"])["endpoint"]
llm = settings.llm
print(json.dumps({"api": llm.api, "prompts": llm.dataset, "bodies": len(settings.payloads), "stream": settings.stream,
                  "tokenizer": llm.counter is not None, "goodput": llm.goodput is not None}))
"""


def tokenizer_json() -> str:
    """A small BPE tokenizer.json built here (nothing comes from a hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["[UNK]"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(["the cat sat on the mat", "how now brown cow"] * 20, trainer)
    return tokenizer.to_str()


@pytest.mark.parametrize("case", ["llm", "llm-dataset"])
def test_an_llm_configuration_is_one_the_load_generator_accepts(case, tmp_path):
    """The LLM cases as rendered: the files the chart mounts at /mnt/llm (its own ConfigMap's, or the
    files an existing ConfigMap would hold) in a directory standing in for the mount."""
    from testkit.helmchart import merge
    from testkit.support import aws_env

    sharegpt = (
        "\n".join(
            json.dumps(
                {
                    "conversations": [
                        {"from": "human", "value": f"say {word}"},
                        {"from": "gpt", "value": f"{word} " * 20},
                    ]
                }
            )
            for word in ("yes", "no", "maybe")
        )
        + "\n"
    )
    files = {"tokenizer.json": tokenizer_json(), "sharegpt.jsonl": sharegpt}
    values = MATRIX[case]
    if values["llm"].get("files"):
        values = merge(values, {"llm": {"files": {"tokenizer.json": files["tokenizer.json"]}}})
    objects = render(values)
    kind = "Job" if values.get("mode") == "job" else "Deployment"
    master = container(find(objects, kind, MASTER))
    configmaps = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-llm")]
    for name, text in (configmaps[0]["data"] if configmaps else files).items():
        (tmp_path / name).write_text(text)
    variables = {
        e["name"]: e["value"].replace("/mnt/llm/", f"{tmp_path}/") for e in master["env"] if "value" in e
    }
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(LOCUSTFILE)],
        input=json.dumps({"env": variables}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=aws_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checked = json.loads(result.stdout.splitlines()[-1])
    assert checked["tokenizer"] is True
    if case == "llm":
        assert (checked["api"], checked["stream"], checked["goodput"]) == ("openai", False, True)
        assert checked["prompts"].startswith(
            "synthetic: 1000 prompts of normal:mean=256,sd=64 tokens, max_tokens 128"
        )
        assert checked["bodies"] == 1000
    else:
        assert (checked["api"], checked["stream"], checked["goodput"]) == ("stream", True, False)
        assert checked["prompts"].startswith(f"ShareGPT {tmp_path}/sharegpt.jsonl (3 prompts)")
        assert checked["bodies"] == 3
