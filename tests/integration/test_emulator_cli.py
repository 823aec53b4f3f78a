"""``smload emulator`` refuses bad flags and files with one line naming the field, exit code 2, no
traceback, before it listens on anything; and its /metrics pass ``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from testkit.support import AB_TEST_CONFIG, BIN, aws_env, free_port, runtime_client, start_emulator


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "smload"), "emulator", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=aws_env(),
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--endpoint", "e", "--variant", "name=a,latncy_ms=5"],
            "--variant: unknown key 'latncy_ms' (did you mean 'latency_ms'?)",
        ),
        (["--endpoint", "e", "--variant", "name=a,weight=0"], "--variant: weight: must be a number > 0"),
        (
            ["--endpoint", "e", "--variant", "name=a,instances=x"],
            "--variant: instances: must be an integer, got 'x'",
        ),
        (
            ["--endpoint", "e", "--variant", "name=a,ModelError=2"],
            "--variant: faults.rates.ModelError: must be a number >= 0 and <= 1",
        ),
        (["--endpoint", "bad_name!"], "--endpoint: must be 1-63 letters, digits or hyphens"),
        (["--variant", "name=a"], "--variant: give --endpoint NAME first"),
        (["--config", "/nonexistent/ab.yaml"], "--config: cannot read /nonexistent/ab.yaml"),
        (["--region", "mars"], "--region: must be an AWS region name"),
        (["--access-key", "justone"], "--access-key: expected KEY_ID:SECRET"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "endpoints: [{name: ab, variants: [{name: a}, {name: b, weight: -1}]}]",
            "ab.yaml: endpoints[0].variants[1].weight: must be a number > 0",
        ),
        (
            "endpoints: [{name: ab, variants: [{name: a, latency: {median_ms: 5, p99: 9}}]}]",
            "ab.yaml: endpoints[0].variants[0].latency: unknown key 'p99' (did you mean 'p99_ms'?)",
        ),
        (
            "endpoints: [{name: ab, variants: [{name: a, faults: {rates: {ModelErr: 0.1}}}]}]",
            "ab.yaml: endpoints[0].variants[0].faults.rates: unknown key 'ModelErr' (did you mean 'ModelError'?)",
        ),
        (
            "endpoints: [{name: ab, variants: [{name: a}, {name: a}]}]",
            "ab.yaml: endpoints[0].variants[1].name: duplicate variant name 'a'",
        ),
        (
            "endpoints: [{name: ab, variants: [{name: a, queue: {on_full: Boom}}]}]",
            "ab.yaml: endpoints[0].variants[0].queue.on_full: must be one of ModelError",
        ),
        (
            "endpoints: [{name: ab, variants: [{name: a, faults: {windows: [{error: ServiceUnavailable, from_s: 5, to_s: 1}]}}]}]",
            "ab.yaml: endpoints[0].variants[0].faults.windows[0].to_s: must be greater than from_s",
        ),
        ("endpoints: []", "ab.yaml: endpoints: must be a list of at least one endpoint"),
        (
            "endpoints: [{name: ab, variants: [{name: a}]}]\nacess_keys: {}",
            "ab.yaml: unknown key 'acess_keys'",
        ),
        ("endpoints: [{name: ab\n", "ab.yaml: not valid YAML"),
    ],
)
def test_bad_config_file_names_the_field(tmp_path, text, message):
    path = tmp_path / "ab.yaml"
    path.write_text(text)
    result = run_cli("--config", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr


# Each of these was a traceback and exit code 1 (issue 16, item 11), or worse: a header injected into
# every answer, a 4 GB body built at startup, a read of /dev/zero that never ends.
@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "ab.yaml",
            b"endpoints: [{name: ab, variants: [{name: a, stream: {error: [ModelStreamError]}}]}]",
            "ab.yaml: endpoints[0].variants[0].stream.error: must be one of ModelStreamError, InternalStreamFailure",
        ),
        (
            "ab.yaml",
            b"endpoints: [{name: ab, variants: [{name: a, stream: {error: {a: 1}}}]}]",
            "ab.yaml: endpoints[0].variants[0].stream.error: must be one of",
        ),
        ("ab.yaml", b"endpoints: [{name: \xff\xfe}]", "is not UTF-8 text (byte 19): save it as UTF-8"),
        (
            "ab.yaml",
            b"endpoints: [{name: ab, variants: [{name: a, response: {body: json, json_bytes: 4000000000}}]}]",
            "ab.yaml: endpoints[0].variants[0].response.json_bytes: must be an integer >= 2 and <= 6291456",
        ),
        (
            "ab.yaml",
            b"endpoints: [{name: ab, variants: [{name: a, weight: 1" + b"0" * 400 + b"}]}]",
            "ab.yaml: endpoints[0].variants[0].weight: must be a number > 0 and <= 1000000",
        ),
        (
            "ab.yaml",
            b'endpoints: [{name: ab, variants: [{name: a, response: {content_type: "a\\r\\nX-Evil: 1"}}]}]',
            "ab.yaml: endpoints[0].variants[0].response.content_type: must be a media type",
        ),
        (
            "ab.json",
            b'{"endpoints": [{"name": "ab\\n", "variants": [{"name": "a"}]}]}',
            "ab.json: endpoints[0].name: must be 1-63 letters",
        ),
        ("ab.json", b"[" * 100_000, "ab.json: not valid JSON: nested too deeply"),
        ("ab.yaml", b"# padding\n" * 200_000, "is larger than 1024 KiB: not a configuration file"),
    ],
)
def test_bad_config_content_is_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli("--config", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "path, message",
    [
        ("/dev/zero", "/dev/zero is not a regular file: give a YAML or JSON file"),
        ("/tmp", "cannot read /tmp: Is a directory"),
    ],
)
def test_config_that_is_not_a_regular_file_is_one_line(path, message):
    result = run_cli("--config", path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"smload emulator: error: --config: {message}\n"


def test_strict_sigv4_without_any_key_is_a_usage_error():
    env = {
        k: v
        for k, v in aws_env().items()
        if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")
    }
    result = subprocess.run(
        [str(BIN / "smload"), "emulator", "--port", str(free_port()), "--strict-sigv4"],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert result.returncode == 2 and "--strict-sigv4: no access keys" in result.stderr


def test_bundled_example_serves_the_ab_test(procs):
    emulator = start_emulator(procs, "--config", str(AB_TEST_CONFIG))
    client = runtime_client(emulator.url)
    seen = set()
    for _ in range(40):
        try:
            seen.add(client.invoke_endpoint(EndpointName="ab-test", Body=b"{}")["InvokedProductionVariant"])
        except client.exceptions.ModelError:
            pass
    assert seen == {"variant-a", "variant-b"}
    variants = emulator.stats()["endpoints"]["ab-test"]["variants"]
    assert variants["variant-a"]["requests"] + variants["variant-b"]["requests"] == 40


def test_metrics_pass_promtool(procs, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make tools` (Debian package prometheus)"
    emulator = start_emulator(procs, "--config", str(AB_TEST_CONFIG))
    client = runtime_client(emulator.url)
    for _ in range(20):
        try:
            client.invoke_endpoint(EndpointName="ab-test", Body=b"{}")
        except client.exceptions.ModelError:
            pass
    client.invoke_endpoint(EndpointName="ab-test", Body=b"{}", TargetVariant="variant-a")
    text = emulator.metrics()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# TYPE sagemaker_emulator_request_duration_seconds histogram" in text
    count = sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sagemaker_emulator_request_duration_seconds_count")
    )
    assert count == 21
    assert 'sagemaker_emulator_capacity_slots{endpoint="ab-test",variant="variant-a"} 8' in text
