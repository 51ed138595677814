"""The local API Gateway stand-in: template loading, events, keys, limits, proxy-response handling (no processes)."""

import base64
import json
from pathlib import Path

import pytest

from hematovision.local import server as local_server
from hematovision.local.runtime import Result
from hematovision.local.server import Gateway
from hematovision.local.template import load_api_config

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def config():
    if not TEMPLATE.is_file():
        pytest.fail("template.yaml is missing at the repository root")
    return load_api_config(TEMPLATE)


class RecordingPool:
    """Stands in for the worker pool: records events, answers with a canned Lambda result."""

    def __init__(self, result=None):
        self.events = []
        self.result = result or Result(
            "response",
            json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}).encode(),
        )

    def invoke(self, payload, timeout):
        self.events.append(json.loads(payload))
        return self.result


def test_template_routes_and_binary_types(config):
    routes = {(r.method, r.path): r.api_key_required for r in config.routes}
    assert routes[("POST", "/v1/classify")] and routes[("POST", "/v1/classify/batch")] and routes[("GET", "/v1/model")]
    assert not routes[("GET", "/health")] and not routes[("GET", "/openapi.json")] and not routes[("GET", "/")]
    assert config.handler == "hematovision.handlers.api.lambda_handler"
    for kind in ("image/jpeg", "image/png", "multipart/form-data; boundary=x"):
        assert config.is_binary(kind)
    assert not config.is_binary("application/json") and not config.is_binary(None)


def test_loader_short_form_tags_and_defaults(tmp_path):
    (tmp_path / "t.yaml").write_text(
        """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
  Level: {Type: String, Default: DEBUG}
Globals:
  Api:
    BinaryMediaTypes: ["image~1*"]
    Auth: {ApiKeyRequired: true}
  Function: {Timeout: 7}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: hematovision.handlers.api.lambda_handler
      Role: !GetAtt Role.Arn
      Environment:
        Variables:
          LOG_LEVEL: !Ref Level
          NAME: !Sub "${AWS::StackName}-${Stage}"
          ARN: !GetAtt Other.Arn
      Events:
        A: {Type: Api, Properties: {RestApiId: !Ref MyApi, Path: "/items/{id}", Method: get}}
        B: {Type: Api, Properties: {RestApiId: !Ref MyApi, Path: /open, Method: any, Auth: {ApiKeyRequired: false}}}
  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
      Cors: "'*'"
""",
        encoding="utf-8",
    )
    config = load_api_config(tmp_path / "t.yaml")
    assert config.stage == "dev" and config.function_timeout == 7
    assert config.environment == {"LOG_LEVEL": "DEBUG", "NAME": "hematovision-local-dev"}
    assert config.is_binary("image/webp") and config.cors == {"AllowOrigin": "*"}
    route, params, _ = config.find_route("GET", "/items/42")
    assert route.api_key_required and params == {"id": "42"}
    route, _, _ = config.find_route("DELETE", "/open")
    assert route is not None and not route.api_key_required


def test_unknown_route_and_keys(config):
    pool = RecordingPool()
    gateway = Gateway(config, pool, {"k1"})
    reply = gateway.handle("GET", "/nope", [], b"")
    assert reply.status == 404  # the template maps MISSING_AUTHENTICATION_TOKEN to 404
    for headers in ([], [("x-api-key", "wrong")]):
        reply = gateway.handle("POST", "/v1/classify", headers + [("Content-Type", "image/jpeg")], b"\xff\xd8")
        assert reply.status == 403
        body = json.loads(reply.body)
        assert body["error"]["code"] == "invalid_api_key" and "x-api-key" in body["error"]["message"]
    assert gateway.handle("GET", "/health", [], b"").status == 200
    assert gateway.handle("GET", "/v1/model", [("X-Api-Key", "k1")], b"").status == 200
    assert len(pool.events) == 2


def test_event_as_api_gateway_builds_it(config):
    pool = RecordingPool()
    gateway = Gateway(config, pool, {"k1"}, host="127.0.0.1:4000")
    data = b"\xff\xd8\xff\x00binary\r\n"
    gateway.handle(
        "POST",
        "/v1/classify?explain=true&a=1&a=2",
        [("x-api-key", "k1"), ("Content-Type", "image/jpeg"), ("X-Multi", "1"), ("X-Multi", "2")],
        data,
    )
    gateway.handle(
        "POST", "/v1/classify", [("x-api-key", "k1"), ("Content-Type", "application/json")], b'{"image": "abc"}'
    )
    gateway.handle("GET", "/health", [], b"")
    binary, text, health = pool.events
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == data
    assert binary["resource"] == "/v1/classify" and binary["httpMethod"] == "POST"
    assert binary["queryStringParameters"] == {"explain": "true", "a": "2"}
    assert binary["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert binary["multiValueHeaders"]["X-Multi"] == ["1", "2"] and binary["headers"]["X-Multi"] == "2"
    context = binary["requestContext"]
    assert context["identity"]["apiKey"] == "k1" and context["stage"] == config.stage and context["requestId"]
    assert context["path"] == f"/{config.stage}/v1/classify"
    assert text["isBase64Encoded"] is False and text["body"] == '{"image": "abc"}'
    assert health["body"] is None and health["queryStringParameters"] is None


def test_payload_limits(config, monkeypatch):
    pool = RecordingPool()
    gateway = Gateway(config, pool, {"k"})
    headers = [("x-api-key", "k"), ("Content-Type", "image/jpeg")]
    # 5 MB of binary becomes a ~6.7 MB base64 event: over Lambda's 6 MB invoke limit
    reply = gateway.handle("POST", "/v1/classify", headers, b"\0" * (5 * 1024 * 1024))
    assert reply.status == 413 and "6291456" in json.loads(reply.body)["error"]["message"]
    reply = gateway.handle("POST", "/v1/classify", headers, b"\0" * (local_server.API_GATEWAY_MAX_BODY + 1))
    assert reply.status == 413
    assert gateway.handle("POST", "/v1/classify", headers, b"\0" * (4 * 1024 * 1024)).status == 200
    assert not any(len(json.dumps(e)) > local_server.LAMBDA_MAX_REQUEST for e in pool.events)


@pytest.mark.parametrize(
    "result, status",
    [
        (Result("error", b'{"errorMessage": "boom", "errorType": "RuntimeError"}'), 502),
        (Result("died"), 502),
        (Result("timeout"), 502),
        (Result("too_large"), 502),
        (Result("gateway_timeout"), 504),
        (Result("response", b'"just a string"'), 502),
        (Result("response", b'{"body": "no status"}'), 502),
        (Result("response", b'{"statusCode": 200, "body": {"not": "a string"}}'), 502),
        (Result("response", b'{"statusCode": 201, "body": "aGk=", "isBase64Encoded": true}'), 201),
    ],
)
def test_integration_failures_map_like_api_gateway(config, result, status):
    gateway = Gateway(config, RecordingPool(result), set())
    reply = gateway.handle("GET", "/health", [], b"")
    assert reply.status == status
    if status == 502:
        body = json.loads(reply.body)  # the template's DEFAULT_5XX, as API Gateway renders it
        assert body["error"]["code"] == "bad_gateway" and body["request_id"]
        assert int(dict(reply.headers)["Retry-After"]) >= 1
    if status == 201:
        assert reply.body == b"hi"


def test_cors_preflight(config):
    reply = Gateway(config, RecordingPool(), set()).handle("OPTIONS", "/v1/classify", [("Origin", "https://x")], b"")
    assert reply.status == 200
    assert dict(reply.headers)["Access-Control-Allow-Origin"] == config.cors["AllowOrigin"]


def test_api_keys_from_cli_env_or_generated(monkeypatch):
    monkeypatch.setenv("HEMATOVISION_API_KEYS", "a, b,")
    assert local_server.resolve_api_keys(["c"]) == ({"a", "b", "c"}, False)
    monkeypatch.delenv("HEMATOVISION_API_KEYS")
    keys, generated = local_server.resolve_api_keys(None)
    assert generated and len(keys) == 1 and len(next(iter(keys))) > 20


# ---------------------------------------------------------------- issue #20: as strict as API Gateway
def test_event_size_checked_from_the_body_before_the_event_is_built(config, monkeypatch):
    built = []
    monkeypatch.setattr(local_server, "build_event", lambda *a, **k: built.append(1) or {})
    gateway = Gateway(config, RecordingPool(), {"k"})
    headers = [("x-api-key", "k"), ("Content-Type", "image/jpeg")]
    over = local_server.LAMBDA_MAX_REQUEST * 3 // 4 + 1  # 4/3 of it is over 6 MB
    reply = gateway.handle("POST", "/v1/classify", headers, b"\0" * over)
    assert reply.status == 413 and not built
    body = json.loads(reply.body)
    assert body["error"]["code"] == "payload_too_large" and "at least" in body["error"]["message"]


def test_a_full_queue_is_429_with_retry_after(config):
    reply = Gateway(config, RecordingPool(Result("throttled")), {"k"}).handle(
        "POST", "/v1/classify", [("x-api-key", "k"), ("Content-Type", "image/jpeg")], b"\xff\xd8"
    )
    assert reply.status == 429
    headers = dict(reply.headers)
    assert int(headers["Retry-After"]) >= 1 and headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    body = json.loads(reply.body)
    assert body["error"]["code"] == "rate_limited" and body["request_id"]


def test_the_invocation_queue_is_bounded():
    from hematovision.local.runtime import Invocation, InvocationQueue, WorkerPool

    queue = InvocationQueue(capacity=2)
    assert queue.put(Invocation(b"1")) and queue.put(Invocation(b"2"))
    assert not queue.put(Invocation(b"3")) and len(queue) == 2
    assert queue.put(Invocation(b"back"), front=True)  # an invocation put back always fits
    pool = WorkerPool(workers=1, handler="x", task_root=ROOT, environment={}, max_queue=0)
    assert pool.invoke(b"{}", timeout=1).kind == "throttled"


@pytest.mark.parametrize(
    "status, code",
    [
        (400, "invalid_request"),
        (408, "request_timeout"),
        (414, "invalid_request"),
        (431, "invalid_request"),
    ],
)
def test_framing_errors_are_the_gateway_json(config, status, code):
    reply = Gateway(config, RecordingPool(), set()).framing_error(status)
    assert reply.status == status
    body = json.loads(reply.body)
    assert body["error"]["code"] == code and body["error"]["message"] and body["request_id"]


def test_log_lines_are_escaped_truncated_and_redacted():
    assert local_server._log_target("/v1/classify?x-api-key=secret&explain=true") == "/v1/classify?<redacted>"
    target = local_server._log_target('/a\x1b[31m\r\nInjected: yes\x00\u00e9"')
    assert target == '/a\\x1b[31m\\r\\nInjected: yes\\x00\\xe9\\"'
    assert all(32 <= ord(c) < 127 for c in target)
    long = local_server._log_target("/" + "a" * 5000)
    assert len(long) < local_server.LOG_TARGET_CHARS + 40 and long.endswith("(5001 chars)")
