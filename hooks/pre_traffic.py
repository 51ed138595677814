"""CodeDeploy PreTraffic hook of ClassifierFunction (template.yaml, DeploymentPreference).

Before CodeDeploy moves any traffic to a newly published version, it invokes this function. It invokes that version
directly - not through API Gateway, so no API key is involved - with the events API Gateway would send: GET /health,
then POST /v1/classify with a real cell photo as a raw image/jpeg body (base64, isBase64Encoded, as API Gateway sends
the binary media types), and reports Succeeded or Failed to CodeDeploy. Failed stops the deployment before a single
client reaches the new version; the alias stays on the old one.

The photo is bccd TEST_SIMPLE/NEUTROPHIL/_0_1966.jpeg (BCCD, MIT licence), the first neutrophil of the test split:
model 1.2.0 calls it NEUTROPHIL at 0.87 (tests/integration/golden/classify-raw-jpeg-neutrophil.json). A new model
that calls it anything else fails the deployment on purpose: someone should look before it serves.

Standard library and boto3 only (both in the Lambda python3.12 runtime): no onnxruntime, no hematovision import.
Logs hold the deployment id, the status and what failed, never the image or the response body.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

log = logging.getLogger()
log.setLevel(logging.INFO)

IMAGE = Path(__file__).with_name("neutrophil.jpg")
EXPECTED_LABEL = "NEUTROPHIL"
CLASSES = {"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}
TARGET_ENV = "TARGET_FUNCTION_VERSION"  # the new version's ARN (template.yaml: !Ref ClassifierFunction.Version)
STAGE = "pre-traffic"  # requestContext.stage of the events: the version is not behind a stage yet


def proxy_event(method: str, path: str, request_id: str, body: bytes | None = None, content_type: str = "") -> dict:
    """An API Gateway REST proxy event (the fields the Lambda proxy integration sends)."""
    headers = {"Accept": "application/json", "User-Agent": "hematovision-pre-traffic-hook"}
    if content_type:
        headers["Content-Type"] = content_type
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers["User-Agent"]},
        },
        "body": base64.b64encode(body).decode("ascii") if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def invoke(lambda_client, function: str, event: dict) -> tuple[int | None, dict | None, str | None]:
    """Invoke `function` synchronously: (proxy statusCode, parsed JSON body, problem) - problem is None when the
    invocation returned a proxy response with a JSON body."""
    reply = lambda_client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode("utf-8")
    )
    payload = reply["Payload"].read()
    if reply.get("FunctionError"):
        # the error payload is the function's own errorType/errorMessage: no image in it
        return None, None, f"function error ({reply['FunctionError']}): {payload[:300]!r}"
    try:
        output = json.loads(payload)
        status = int(output["statusCode"])
        body = output.get("body") or ""
        if output.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        return status, json.loads(body), None
    except (ValueError, KeyError, TypeError) as error:
        return None, None, f"malformed proxy response ({type(error).__name__}: {error})"


def check_version(lambda_client, function: str, request_id: str) -> list[str]:
    """What is wrong with the version: [] when it is fit for traffic."""
    problems = []
    status, health, problem = invoke(lambda_client, function, proxy_event("GET", "/health", f"{request_id}-health"))
    if problem:
        problems.append(f"GET /health: {problem}")
    elif status != 200 or health.get("status") != "ok":
        problems.append(f"GET /health: status {status}, body status {health.get('status')!r}")

    event = proxy_event("POST", "/v1/classify", f"{request_id}-classify", IMAGE.read_bytes(), "image/jpeg")
    status, answer, problem = invoke(lambda_client, function, event)
    if problem:
        return [*problems, f"POST /v1/classify: {problem}"]
    if status != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        return [*problems, f"POST /v1/classify: status {status} ({error})"]
    probabilities = answer.get("probabilities") or {}
    if set(probabilities) != CLASSES:
        problems.append(f"POST /v1/classify: classes {sorted(probabilities)}, expected {sorted(CLASSES)}")
    elif abs(sum(probabilities.values()) - 1.0) > 1e-3:
        problems.append(f"POST /v1/classify: probabilities sum to {sum(probabilities.values()):.4f}")
    if answer.get("label") != EXPECTED_LABEL:
        problems.append(f"POST /v1/classify: the reference neutrophil was called {answer.get('label')!r}")
    if not (answer.get("model") or {}).get("version"):
        problems.append("POST /v1/classify: no model version in the answer")
    if not answer.get("disclaimer"):
        problems.append("POST /v1/classify: no decision-support disclaimer in the answer")
    return problems


def run(event: dict, function: str, lambda_client, codedeploy) -> dict:
    """Check the version, then report to CodeDeploy. A check that raises counts as Failed: the report is always
    sent, or CodeDeploy would wait for the hook's timeout before rolling back."""
    deployment_id = event["DeploymentId"]
    try:
        problems = check_version(lambda_client, function, deployment_id)
    except Exception as error:  # noqa: BLE001 - any failure of the check fails the deployment, with its reason
        problems = [f"the check raised {type(error).__name__}: {error}"]
    status = "Failed" if problems else "Succeeded"
    log.info(json.dumps({"deployment_id": deployment_id, "version": function, "status": status, "problems": problems}))
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status, "problems": problems}


def handler(event: dict, context) -> dict:  # noqa: ARG001 - the Lambda signature
    import boto3  # in the Lambda runtime; imported here so the tests need no AWS SDK

    return run(event, os.environ[TARGET_ENV], boto3.client("lambda"), boto3.client("codedeploy"))
