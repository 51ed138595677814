"""hooks/pre_traffic.py, CodeDeploy's PreTraffic hook: its verdict on a version and its report to CodeDeploy.

The Lambda client is a small fake that runs the real handler (hematovision.handlers.api with the committed model)
in-process, or answers as a broken version would; CodeDeploy is a recorder. One more test checks the hook's AWS calls
against botocore's own service models (botocore Stubber, in the tools venv, which has botocore).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import logging
import textwrap

import pytest

from tests import fakes
from tests.ci import require
from tests.infrastructure.infra_helpers import MODEL_DIR, ROOT, run_tool, tool

HOOK_PATH = ROOT / "hooks" / "pre_traffic.py"
VERSION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:hematovision-dev-ClassifierFunction-abc:7"
EVENT = {"DeploymentId": "d-EXAMPLE123", "LifecycleEventHookExecutionId": "hook-execution-id-1"}


def load_hook():
    spec = importlib.util.spec_from_file_location("pre_traffic", HOOK_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


class RecordingCodeDeploy:
    def __init__(self):
        self.calls = []

    def put_lifecycle_event_hook_execution_status(self, **kwargs):
        self.calls.append(kwargs)
        return {"lifecycleEventHookExecutionId": kwargs["lifecycleEventHookExecutionId"]}


class FakeLambda:
    """lambda.invoke as boto3 returns it: StatusCode, a Payload stream, FunctionError when the function raised."""

    def __init__(self, answer):
        self.answer = answer  # event -> proxy response dict, or an exception to raise inside "the function"
        self.events = []

    def invoke(self, FunctionName, InvocationType, Payload):  # noqa: N803 - boto3's parameter names
        assert InvocationType == "RequestResponse"
        event = json.loads(Payload)
        self.events.append((FunctionName, event))
        try:
            output = self.answer(event)
        except RuntimeError as error:
            payload = {"errorType": type(error).__name__, "errorMessage": str(error)}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(payload).encode()),
            }
        return {"StatusCode": 200, "ExecutedVersion": "7", "Payload": io.BytesIO(json.dumps(output).encode())}


@pytest.fixture(scope="module")
def real_handler():
    require((MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    loader = fakes.load_handler_module(MODEL_DIR)
    module = next(loader)
    yield module.lambda_handler
    next(loader, None)


def proxy(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def test_a_healthy_version_succeeds(real_handler, context, caplog):
    lambda_client = FakeLambda(lambda event: real_handler(event, context))
    codedeploy = RecordingCodeDeploy()
    with caplog.at_level(logging.INFO):
        result = hook.run(EVENT, VERSION_ARN, lambda_client, codedeploy)
    assert result == {"status": "Succeeded", "problems": []}
    assert codedeploy.calls == [
        {
            "deploymentId": "d-EXAMPLE123",
            "lifecycleEventHookExecutionId": "hook-execution-id-1",
            "status": "Succeeded",
        }
    ]
    # the new version itself, by its ARN, with /health and a real photo as API Gateway sends a raw image/jpeg
    assert [(name, event["httpMethod"], event["path"]) for name, event in lambda_client.events] == [
        (VERSION_ARN, "GET", "/health"),
        (VERSION_ARN, "POST", "/v1/classify"),
    ]
    classify = lambda_client.events[1][1]
    image = (ROOT / "hooks" / "neutrophil.jpg").read_bytes()
    assert classify["isBase64Encoded"] is True and base64.b64decode(classify["body"]) == image
    assert classify["headers"]["Content-Type"] == "image/jpeg"
    # never the image in the logs
    assert classify["body"][:40] not in caplog.text and "d-EXAMPLE123" in caplog.text


@pytest.mark.parametrize(
    "case, answer, expected",
    [
        ("function error", lambda event: (_ for _ in ()).throw(RuntimeError("boom")), "function error"),
        (
            "500",
            lambda event: proxy(500, {"error": {"code": "internal_error", "message": "x"}, "request_id": "r"}),
            "status 500",
        ),
        ("malformed", lambda event: {"statusCode": 200, "body": "not json"}, "malformed proxy response"),
    ],
)
def test_a_broken_version_fails(case, answer, expected):
    codedeploy = RecordingCodeDeploy()
    result = hook.run(EVENT, VERSION_ARN, FakeLambda(answer), codedeploy)
    assert result["status"] == "Failed", case
    assert any(expected in problem for problem in result["problems"]), result["problems"]
    assert [call["status"] for call in codedeploy.calls] == ["Failed"]


def test_a_version_that_misreads_the_reference_cell_fails(real_handler, context):
    """A well-formed 200 is not enough: the reference neutrophil must be called a neutrophil (a swapped colour
    channel or a wrong crop answers with confidence, just wrongly)."""

    def misreading(event):
        output = real_handler(event, context)
        if event["path"] == "/v1/classify":
            body = json.loads(output["body"])
            body["label"] = "LYMPHOCYTE"
            output["body"] = json.dumps(body)
        return output

    codedeploy = RecordingCodeDeploy()
    result = hook.run(EVENT, VERSION_ARN, FakeLambda(misreading), codedeploy)
    assert result["status"] == "Failed"
    assert result["problems"] == ["POST /v1/classify: the reference neutrophil was called 'LYMPHOCYTE'"]
    assert codedeploy.calls[0]["status"] == "Failed"


def test_a_check_that_raises_still_reports_failed():
    """CodeDeploy would otherwise wait out the hook's timeout before rolling back."""

    class Unreachable:
        def invoke(self, **kwargs):
            raise ConnectionError("endpoint unreachable")

    codedeploy = RecordingCodeDeploy()
    result = hook.run(EVENT, VERSION_ARN, Unreachable(), codedeploy)
    assert result["status"] == "Failed" and "ConnectionError" in result["problems"][0]
    assert [call["status"] for call in codedeploy.calls] == ["Failed"]


def test_the_hook_needs_no_serving_dependencies():
    """The hook's package is hooks/ alone (its Makefile): standard library and the runtime's boto3."""
    source = HOOK_PATH.read_text()
    for module in ("onnxruntime", "numpy", "PIL", "hematovision", "aws_lambda_powertools"):
        assert f"import {module}" not in source and f"from {module}" not in source, module
    makefile = (ROOT / "hooks" / "Makefile").read_text()
    assert "build-PreTrafficHookFunction:" in makefile and "neutrophil.jpg" in makefile


STUBBED = textwrap.dedent(
    """
    import importlib.util, io, json, sys
    import botocore.session
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    spec = importlib.util.spec_from_file_location("pre_traffic", sys.argv[1])
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    version = sys.argv[2]
    session = botocore.session.get_session()
    kwargs = dict(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    lam, cd = session.create_client("lambda", **kwargs), session.create_client("codedeploy", **kwargs)

    def payload(body):
        data = json.dumps({"statusCode": 200, "body": json.dumps(body)}).encode()
        return StreamingBody(io.BytesIO(data), len(data))

    probabilities = {"EOSINOPHIL": 0.05, "LYMPHOCYTE": 0.04, "MONOCYTE": 0.04, "NEUTROPHIL": 0.87}
    classify = {"label": "NEUTROPHIL", "probabilities": probabilities, "model": {"version": "1.2.0"},
                "disclaimer": "Decision support, not a diagnosis."}
    with Stubber(lam) as lam_stub, Stubber(cd) as cd_stub:
        for body in ({"status": "ok"}, classify):
            lam_stub.add_response("invoke", {"StatusCode": 200, "Payload": payload(body)})
        cd_stub.add_response(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": "e-1"},
            {"deploymentId": "d-1", "lifecycleEventHookExecutionId": "e-1", "status": "Succeeded"},
        )
        result = hook.run({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e-1"}, version, lam, cd)
        lam_stub.assert_no_pending_responses()
        cd_stub.assert_no_pending_responses()
    print(json.dumps(result))
    """
)


def test_aws_calls_match_botocore_service_models(tmp_path):
    """botocore validates each call's parameters against the real Lambda and CodeDeploy API models: a misspelt
    parameter or a status CodeDeploy does not know fails here, not in the first deployment."""
    python = tool("python")  # the tools venv: aws-sam-cli brings botocore
    script = tmp_path / "stubbed.py"
    script.write_text(STUBBED)
    proc = run_tool([python, script, HOOK_PATH, VERSION_ARN], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"status": "Succeeded", "problems": []}
