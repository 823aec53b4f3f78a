"""LLM endpoints as real clients see them: the ``openai`` SDK on the OpenAI-compatible route (with
bearer tokens from ``smload.invoke.bearer``), boto3 and the AWS CLI on the runtime API, against a real
``smload emulator`` process serving emulator/examples/llm.yaml. Every count the clients saw must
equal the emulator's ground truth exactly."""

from __future__ import annotations

import http.client
import json
import math
import shutil
import subprocess
import threading

import openai
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import EventStreamError
from testkit.support import (
    BIN,
    REPO,
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    aws_env,
    http_get,
    runtime_client,
    start_emulator,
)

from smload.invoke.bearer import TokenSource

LLM_EXAMPLE = REPO / "emulator" / "examples" / "llm.yaml"
# The default mode accepts any well-formed SigV4 header on the runtime API
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0123"
)
PROMPT = "What limits the throughput of a batch of sequences?"  # 51 characters: 13 tokens at 4 per token


@pytest.fixture
def llm(procs):
    return start_emulator(procs, "--config", str(LLM_EXAMPLE))


def token_source() -> TokenSource:
    return TokenSource(Credentials(TEST_ACCESS_KEY, TEST_SECRET_KEY), "us-east-1")


def test_openai_sdk_streams_from_the_route_and_the_truth_counts_the_same_tokens(llm):
    status, body = http_get(f"{llm.url}/_emulator/config")
    assert status == 200
    config = json.loads(body)
    chat, multi = config["endpoints"]
    assert chat["variants"][0]["llm"]["max_batch"] == 16 and "llm" not in multi["inference_components"][1]
    client = openai.OpenAI(base_url=chat["openai_base_url"], api_key=token_source().token(), max_retries=0)
    received = {"fast": 0, "slow": 0}
    for variant, max_tokens in (("fast", 12), ("slow", 5), ("fast", 7)):
        stream = client.chat.completions.create(
            model="",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Amzn-SageMaker-Target-Variant": variant},
        )
        chunks = list(stream)
        content = [c for c in chunks if c.choices and c.choices[0].delta.content]
        assert len(content) == max_tokens
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == max_tokens
        assert chunks[-1].usage.prompt_tokens == math.ceil(len(PROMPT) / 4)
        assert content[-1].choices[0].finish_reason == "length"
        received[variant] += len(content)
    # non-streamed, on an inference component (the route speaks OpenAI whatever the container's format)
    writer = openai.OpenAI(
        base_url=multi["inference_components"][0]["openai_base_url"], api_key="any", max_retries=0
    )
    answer = writer.chat.completions.create(
        model="", messages=[{"role": "user", "content": PROMPT}], max_tokens=9
    )
    assert answer.usage.completion_tokens == len(answer.choices[0].message.content) // 4 <= 9
    # the shorthand route: the body's model names the endpoint (and component)
    shorthand = openai.OpenAI(base_url=config["openai_base_url"], api_key="any", max_retries=0)
    short = shorthand.chat.completions.create(
        model="multi/writer", messages=[{"role": "user", "content": PROMPT}], max_tokens=2
    )
    assert short.model == "writer" and short.usage.completion_tokens <= 2
    stats = llm.stats()["endpoints"]
    for variant, tokens in received.items():
        truth = stats["chat"]["variants"][variant]["llm"]
        assert truth["output_tokens"] == tokens
        assert truth["input_tokens"] == 13 * (2 if variant == "fast" else 1)
        assert truth["ttft_ms"]["count"] == truth["e2e_ms"]["count"] == (2 if variant == "fast" else 1)
        assert truth["itl_ms"]["count"] == tokens - truth["ttft_ms"]["count"]
    component = stats["multi"]["inference_components"]["writer"]
    assert component["status"] == {"200": 2}
    assert component["llm"]["output_tokens"] == answer.usage.completion_tokens + short.usage.completion_tokens


def test_boto3_reads_llm_streams_part_by_part_in_each_format(procs, tmp_path):
    config = tmp_path / "formats.yaml"
    config.write_text(
        "endpoints: [{name: gen, variants: [{name: openai, llm: {}}, {name: tgi, llm: {format: tgi}}, "
        "{name: lmi, llm: {format: lmi}}, {name: breaks, llm: {format: tgi}, stream: {error_rate: 1.0}}]}]\n"
    )
    emulator = start_emulator(procs, "--config", str(config))
    client = runtime_client(emulator.url)
    bodies = {
        "openai": {"messages": [{"role": "user", "content": "abcd" * 3}], "max_tokens": 6},
        "tgi": {"inputs": "abcd" * 3, "parameters": {"max_new_tokens": 6}},
        "lmi": {"inputs": "abcd" * 3, "parameters": {"max_new_tokens": 6}},
    }
    for variant, body in bodies.items():
        response = client.invoke_endpoint_with_response_stream(
            EndpointName="gen", TargetVariant=variant, Body=json.dumps(body), ContentType="application/json"
        )
        assert response["InvokedProductionVariant"] == variant
        parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
        if variant == "openai":
            assert response["ContentType"] == "text/event-stream"
            assert parts[-1] == b"data: [DONE]\n\n" and len(parts) == 7
            frames = [json.loads(p.removeprefix(b"data: ")) for p in parts[:-1]]
            text = "".join(f["choices"][0]["delta"]["content"] for f in frames)
        else:
            assert response["ContentType"] == (
                "text/event-stream" if variant == "tgi" else "application/jsonlines"
            )
            assert len(parts) == 6  # one part per token, each one whole frame
            frames = [json.loads(p.removeprefix(b"data:")) for p in parts]
            text = "".join(f["token"]["text"] for f in frames)
            assert frames[-1]["generated_text"] == text
            assert frames[-1]["details"] == {
                "finish_reason": "length",
                "generated_tokens": 6,
                "input_length": 3,
            }
        assert len(text) == 6 * 4  # 4 characters per token
    stats = emulator.stats()["endpoints"]["gen"]["variants"]
    assert [stats[v]["llm"]["output_tokens"] for v in bodies] == [6, 6, 6]
    # a stream that breaks: half its tokens, then the modelled error event
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="gen", TargetVariant="breaks", Body=json.dumps(bodies["tgi"])
    )
    parts = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["Body"]:
            parts.append(event["PayloadPart"]["Bytes"])
    assert len(parts) == 3 and caught.value.response["Error"]["Code"] == "ModelStreamError"
    broken = emulator.stats()["endpoints"]["gen"]["variants"]["breaks"]
    assert broken["status"] == {"200": 1} and broken["errors"] == {"ModelError": 1}
    assert broken["llm"]["output_tokens"] == 3 and broken["llm"]["batch"]["now"] == 0


def test_aws_cli_gets_a_non_streamed_completion(llm, tmp_path):
    out = tmp_path / "out.json"
    body = json.dumps({"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4})
    result = subprocess.run(
        [
            str(BIN / "aws"),
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-url",
            llm.url,
            "--endpoint-name",
            "chat",
            "--target-variant",
            "slow",
            "--content-type",
            "application/json",
            "--body",
            body,
            str(out),
        ],
        env=aws_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(out.read_text())
    assert answer["object"] == "chat.completion" and answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"] == {"prompt_tokens": 13, "completion_tokens": 4, "total_tokens": 17}
    assert json.loads(result.stdout)["InvokedProductionVariant"] == "slow"
    assert llm.stats()["endpoints"]["chat"]["variants"]["slow"]["llm"]["output_tokens"] == 4


def test_inference_components_route_count_and_export(llm):
    client = runtime_client(llm.url)
    tgi = json.dumps({"inputs": "abcd", "parameters": {"max_new_tokens": 3}})
    answer = json.loads(
        client.invoke_endpoint(EndpointName="multi", InferenceComponentName="writer", Body=tgi)["Body"].read()
    )
    assert answer[0]["details"]["generated_tokens"] <= 3
    classic = client.invoke_endpoint(EndpointName="multi", InferenceComponentName="classifier", Body=b"{}")
    assert len(classic["Body"].read()) == 64
    with pytest.raises(
        client.exceptions.ValidationError, match="Inference Component Name header is required"
    ):
        client.invoke_endpoint(EndpointName="multi", Body=tgi)
    with pytest.raises(client.exceptions.ValidationError, match="Inference Component ghost not found"):
        client.invoke_endpoint(EndpointName="multi", InferenceComponentName="ghost", Body=tgi)
    # a classic model has no chat completions in its container: the route hands back its 404
    route = openai.OpenAI(
        base_url=f"{llm.url}/endpoints/multi/inference-components/classifier/openai/v1",
        api_key="any",
        max_retries=0,
    )
    with pytest.raises(openai.NotFoundError, match="serves a classic model") as caught:
        route.chat.completions.create(model="", messages=[{"role": "user", "content": "hi"}])
    assert "x-amzn-errortype" not in caught.value.response.headers  # the container's answer, as is
    stats = llm.stats()["endpoints"]["multi"]
    components = stats["inference_components"]
    assert components["writer"]["status"] == {"200": 1}
    assert components["classifier"]["status"] == {"200": 1, "404": 1}
    assert components["(unknown)"]["errors"] == {
        "ValidationError": 1
    }  # bounded: an unknown name is not a label
    assert stats["variants"]["unknown"]["errors"] == {"ValidationError": 1}
    assert stats["requests"] == 5
    text = llm.metrics()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make tools` (Debian package prometheus)"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert (
        'sagemaker_emulator_requests_total{endpoint="multi",inference_component="writer",status="200"} 1'
        in text
    )
    assert (
        f'sagemaker_emulator_llm_output_tokens_total{{endpoint="multi",inference_component="writer"}} '
        f"{answer[0]['details']['generated_tokens']}" in text
    )
    assert (
        'sagemaker_emulator_capacity_slots{endpoint="chat",variant="fast"} 32' in text
    )  # 2 instances x batch 16


QUEUE_CONFIG = """
endpoints:
  - name: slow
    variants:
      - name: v
        queue: {max_depth: 1, max_wait_ms: 100}
        llm: {max_batch: 1, decode: {base_ms: 50, per_seq_ms: 0}}
      - name: throttled
        faults: {rates: {ThrottlingException: 1.0}}
        llm: {}
"""


def test_queue_limits_front_end_faults_and_the_container_api(procs, tmp_path):
    """One sequence at a time, 50-ms steps, a queue of 1 that waits at most 100 ms: of three
    simultaneous requests one is served, one times out in the queue (ModelError(0), SageMaker's
    timeout) and one finds the queue full (the container's 503 as ModelError(503))."""
    config = tmp_path / "queue.yaml"
    config.write_text(QUEUE_CONFIG)
    emulator = start_emulator(procs, "--config", str(config))
    body = json.dumps({"messages": [{"role": "user", "content": "abcd"}], "max_tokens": 10}).encode()
    headers = {
        "Authorization": SIGV4,
        "Content-Type": "application/json",
        "X-Amzn-SageMaker-Target-Variant": "v",
    }
    answers: list[tuple[int, dict]] = []

    def call() -> None:  # whichever comes first is served, the next queues, the last finds the queue full
        conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
        conn.request("POST", "/endpoints/slow/invocations", body=body, headers=headers)
        response = conn.getresponse()
        answers.append((response.status, json.loads(response.read())))
        conn.close()

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    statuses = sorted((status, doc.get("OriginalStatusCode")) for status, doc in answers)
    assert statuses == [(200, None), (424, 0), (424, 503)], answers
    truth = emulator.stats()["endpoints"]["slow"]["variants"]["v"]
    assert truth["status"] == {"200": 1, "424": 2} and truth["errors"] == {"ModelError": 2}
    assert truth["llm"]["output_tokens"] == 10 and truth["llm"]["queued_now"] == 0
    assert 'sagemaker_emulator_in_flight{endpoint="slow",variant="v"} 0' in emulator.metrics()

    route = openai.OpenAI(base_url=f"{emulator.url}/endpoints/slow/openai/v1", api_key="any", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:  # ThrottlingException: a generic 400, as from AWS
        route.chat.completions.create(
            model="",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Amzn-SageMaker-Target-Variant": "throttled"},
        )
    assert caught.value.response.headers["x-amzn-errortype"] == "ThrottlingException"

    # the container API: the first endpoint's variants, the format's own stream when asked for
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    streamed = json.dumps(
        {"messages": [{"role": "user", "content": "abcd"}], "max_tokens": 3, "stream": True}
    )
    for _ in range(10):  # the split is by weight: go on until the LLM variant answered
        conn.request("POST", "/invocations", body=streamed)
        response = conn.getresponse()
        data = response.read()
        if response.status == 200:
            break
    assert response.getheader("Content-Type") == "text/event-stream"
    assert data.count(b"data: {") == 3 and data.endswith(b"data: [DONE]\n\n")
    conn.close()
