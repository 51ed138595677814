"""One list of error codes, one casing (issue #21): hematovision.errors.ErrorCode is what the function raises, what
the spec's error.code enum lists, and what the local server answers with."""

import ast
import json
import re
from pathlib import Path

import pytest

import hematovision
from hematovision.errors import CLI_ONLY_CODES, ErrorCode
from hematovision.local.runtime import Result
from hematovision.local.server import Gateway
from hematovision.local.template import load_api_config
from tests.unit.test_handler import invoke

PACKAGE = Path(hematovision.__file__).resolve().parent
ROOT = PACKAGE.parents[2]
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
GATEWAY_CODES = {
    "invalid_api_key": 403,
    "forbidden": 403,
    "not_found": 404,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_request": 400,
    "throttled": 429,
    "quota_exceeded": 429,
    "rate_limited": 429,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "gateway_timeout": 504,
    "internal_error": 500,
}


def raised_codes() -> dict[str, set[str]]:
    """code -> files, for every ClientError(...) in the package whose code is a string literal (keyword or first)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ClientError"):
                continue
            argument = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
            assert isinstance(argument, ast.Constant), f"{path}: ClientError with a computed code, line {node.lineno}"
            found.setdefault(argument.value, set()).add(path.relative_to(PACKAGE).as_posix())
    return found


def test_codes_are_lowercase_snake_case_and_unique():
    values = [code.value for code in ErrorCode]
    assert len(values) == len(set(values))
    assert all(SNAKE.fullmatch(value) for value in values), values
    assert set(GATEWAY_CODES) <= set(values)


def test_every_raised_code_is_in_the_list():
    found = raised_codes()
    assert len(found) >= 15  # the scan sees the parser's, the decoder's and the classifier's codes
    unknown = {code: files for code, files in found.items() if code not in ErrorCode.__members__.values()}
    assert set(unknown) <= set(CLI_ONLY_CODES), unknown
    for code in CLI_ONLY_CODES:  # only the CLI's own paths use them, never the HTTP layer
        assert found.get(code, set()) <= {"cli.py", "logic/evaluation.py"}, found.get(code)


def test_the_spec_enum_is_the_list(api, context, load_event):
    _, spec, _ = invoke(api, load_event("openapi"), context)
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    assert schemas["ErrorBody"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}


def test_function_answers_use_the_list(api, context, load_event):
    event = load_event("classify-raw-jpeg")
    event["body"], event["isBase64Encoded"] = "bm90IGFuIGltYWdl", True  # "not an image"
    status, body, _ = invoke(api, event, context)
    assert status == 415 and body["error"]["code"] == ErrorCode.UNSUPPORTED_IMAGE
    event = load_event("classify-raw-jpeg")
    event["path"] = event["resource"] = "/v1/nowhere"
    status, body, _ = invoke(api, event, context)
    assert status == 404 and body["error"]["code"] == "not_found"


# ---------------------------------------------------------------- the local server's own answers
class Pool:
    def __init__(self, result):
        self.result = result

    def invoke(self, payload, timeout):
        return self.result


@pytest.fixture(scope="module")
def config():
    return load_api_config(ROOT / "template.yaml")


def post(gateway):
    return gateway.handle("POST", "/v1/classify", [("x-api-key", "k"), ("Content-Type", "image/jpeg")], b"\xff\xd8")


def test_local_throttle_is_rate_limited_with_retry_after(config):
    reply = post(Gateway(config, Pool(Result("throttled")), {"k"}))
    body = json.loads(reply.body)
    assert reply.status == 429 and body["error"]["code"] == "rate_limited" and body["request_id"]
    assert int(dict(reply.headers)["Retry-After"]) >= 1


def test_local_server_codes_are_in_the_list():
    """The codes the local server writes itself (its gateway responses come from template.yaml)."""
    source = (PACKAGE / "local" / "server.py").read_text(encoding="utf-8")
    used = set(re.findall(r"ErrorCode\.([A-Z_]+)", source))
    assert used and used <= set(ErrorCode.__members__)


@pytest.mark.parametrize("kind", ["died", "error", "timeout"])
def test_local_function_failure_is_the_templates_bad_gateway(config, kind):
    reply = post(Gateway(config, Pool(Result(kind, b"{}")), {"k"}))
    body = json.loads(reply.body)
    assert reply.status == 502 and body["error"]["code"] == "bad_gateway" and body["request_id"]


@pytest.mark.parametrize("status", [400, 408, 413, 414, 431])
def test_every_local_answer_has_a_listed_code(config, status):
    """The local server's answers to malformed HTTP, and every gateway response template.yaml declares."""
    reply = Gateway(config, None, {"k"}).framing_error(status)
    assert reply.status == status and json.loads(reply.body)["error"]["code"] in ErrorCode.__members__.values()
    literal = {
        found
        for response in config.gateway_responses.values()
        for found in re.findall(r'"code":\s*"([^"$]+)"', response.json_template or "")
    }
    assert literal and literal <= {code.value for code in ErrorCode}, literal - {code.value for code in ErrorCode}
