"""The little of the SageMaker control plane that load tests read: ``DescribeEndpoint`` (instance
counts per production variant, the endpoint's status) and ``DescribeInferenceComponent`` (copy
counts), in the ``json`` 1.1 protocol botocore speaks (``POST /`` with ``X-Amz-Target:
SageMaker.<Operation>``), on the emulator's one port. Point a client at it with
``AWS_ENDPOINT_URL_SAGEMAKER=http://127.0.0.1:8080`` (or ``endpoint_url=``): calibration's
instance count, the exporter's CloudWatch poller and ``smload autoscaling verify`` then see the
emulated autoscaling as they would see AWS's.

During a scaling activity the endpoint is ``Updating``: ``DesiredInstanceCount`` is the new count,
``CurrentInstanceCount`` the instances in service (as on AWS, until the new ones are ready).
Signatures are checked as for the runtime API (service ``sagemaker``); nothing here is counted in
the runtime's stats.
"""

from __future__ import annotations

import json

from . import sigv4, wire

TARGET_PREFIX = b"SageMaker."
CONTENT_TYPE = b"application/x-amz-json-1.1"


def handle(app, conn, req) -> None:
    operation = req.headers.get(b"x-amz-target", b"")
    auth = app.authenticate(req)
    if auth is not None:
        _error(app, conn, req, auth.status, auth.code + sigv4.CORAL, auth.message)
        return
    try:
        params = json.loads(req.body or b"{}")
    except ValueError:
        params = None
    if not isinstance(params, dict):
        _error(
            app,
            conn,
            req,
            400,
            "SerializationException",
            "Start of structure or map found where not expected.",
        )
        return
    if operation == TARGET_PREFIX + b"DescribeEndpoint":
        body = describe_endpoint(app, params)
    elif operation == TARGET_PREFIX + b"DescribeInferenceComponent":
        body = describe_inference_component(app, params)
    else:
        name = operation.decode("latin-1")
        _error(
            app,
            conn,
            req,
            400,
            "UnknownOperationException",
            f"{name} is not emulated: the emulator answers SageMaker.DescribeEndpoint and "
            "SageMaker.DescribeInferenceComponent",
        )
        return
    if isinstance(body, str):
        _error(app, conn, req, 400, "ValidationException", body)
        return
    data = json.dumps(body).encode()
    conn.send(app.head(200, CONTENT_TYPE, len(data), b"", req.keep_alive) + data, req.keep_alive)


def _arn(app, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{app.region}:{wire.ACCOUNT}:{kind}/{name.lower()}"


def _endpoint(app, params: dict):
    name = params.get("EndpointName")
    endpoint = app.endpoints.get(name.encode()) if isinstance(name, str) else None
    return name, endpoint


def describe_endpoint(app, params: dict) -> dict | str:
    name, endpoint = _endpoint(app, params)
    if endpoint is None:
        return f'Could not find endpoint "{_arn(app, "endpoint", str(name))}".'
    variants, updating = [], False
    for runtime in endpoint.variants:
        scaling = runtime.scaling
        current = scaling.instances if scaling is not None else runtime.config.instances
        desired = scaling.desired if scaling is not None else current
        summary = {
            "VariantName": runtime.name,
            "CurrentWeight": runtime.config.weight,
            "DesiredWeight": runtime.config.weight,
            "CurrentInstanceCount": current,
            "DesiredInstanceCount": desired,
        }
        if scaling is not None and scaling.scaler.updating:
            updating = True
            activity = scaling.scaler.activity
            status = "Creating" if activity.out else "Deleting"
            summary["VariantStatus"] = [
                {
                    "Status": status,
                    "StartTime": scaling.real_wall(activity.time),
                    "StatusMessage": activity.reason,
                }
            ]
        variants.append(summary)
    updating = updating or any(
        c.scaling is not None and c.scaling.scaler.updating for c in endpoint.components.values()
    )
    last = max(
        [app.started_at] + [r.scaling.last_change() for r in app.scaled if r.endpoint == endpoint.name]
    )
    return {
        "EndpointName": endpoint.name,
        "EndpointArn": _arn(app, "endpoint", endpoint.name),
        "EndpointConfigName": endpoint.name,
        "ProductionVariants": variants,
        "EndpointStatus": "Updating" if updating else "InService",
        "CreationTime": app.started_at,
        "LastModifiedTime": last,
    }


def describe_inference_component(app, params: dict) -> dict | str:
    name = params.get("InferenceComponentName")
    for endpoint in app.endpoints.values():
        runtime = endpoint.components.get(name) if isinstance(name, str) else None
        if runtime is None:
            continue
        scaling = runtime.scaling
        current = scaling.instances if scaling is not None else runtime.config.instances
        desired = scaling.desired if scaling is not None else current
        updating = scaling is not None and scaling.scaler.updating
        return {
            "InferenceComponentName": runtime.name,
            "InferenceComponentArn": _arn(app, "inference-component", runtime.name),
            "EndpointName": endpoint.name,
            "EndpointArn": _arn(app, "endpoint", endpoint.name),
            "VariantName": "AllTraffic",
            "RuntimeConfig": {"DesiredCopyCount": desired, "CurrentCopyCount": current},
            "InferenceComponentStatus": "Updating" if updating else "InService",
            "CreationTime": app.started_at,
            "LastModifiedTime": scaling.last_change() if scaling is not None else app.started_at,
        }
    return f'Could not find inference component "{_arn(app, "inference-component", str(name))}".'


def _error(app, conn, req, status: int, code: str, message: str) -> None:
    data = json.dumps({"__type": code, "message": message}).encode()
    extra = b"x-amzn-ErrorType: " + code.encode() + b"\r\n"
    conn.send(app.head(status, CONTENT_TYPE, len(data), extra, req.keep_alive) + data, req.keep_alive)
