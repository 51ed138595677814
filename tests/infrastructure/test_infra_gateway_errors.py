"""API Gateway's own errors (template.yaml GatewayResponses) and the WAF's custom bodies: one casing, one code per
response type, every code one of the API's (hematovision.errors.ErrorCode, which the OpenAPI enum is built from)."""

from __future__ import annotations

import json
import re

import pytest

from tests.infrastructure.infra_helpers import TEMPLATE, load_cfn

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# response type -> (pinned status or None = API Gateway's own, code, carries Retry-After)
EXPECTED = {
    "INVALID_API_KEY": ("403", "invalid_api_key", False),  # a missing key is this type too
    "ACCESS_DENIED": ("403", "forbidden", False),
    "WAF_FILTERED": ("403", "forbidden", False),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", False),  # unknown route or method
    "RESOURCE_NOT_FOUND": ("404", "not_found", False),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large", False),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "unsupported_media_type", False),
    "BAD_REQUEST_PARAMETERS": ("400", "invalid_request", False),
    "BAD_REQUEST_BODY": ("400", "invalid_request", False),
    "THROTTLED": ("429", "throttled", True),
    "QUOTA_EXCEEDED": ("429", "quota_exceeded", False),  # resets with the period: a quick retry cannot succeed
    "API_CONFIGURATION_ERROR": ("500", "internal_error", True),
    "INTEGRATION_FAILURE": ("503", "service_unavailable", True),  # Lambda throttled the invocation
    "INTEGRATION_TIMEOUT": ("504", "gateway_timeout", True),
    "DEFAULT_4XX": (None, "invalid_request", False),
    "DEFAULT_5XX": ("502", "bad_gateway", True),  # what is left: the function failed or answered malformed
}
WAF_BODIES = {"rate-limited": "rate_limited"}


@pytest.fixture(scope="module")
def responses() -> dict:
    return load_cfn(TEMPLATE)["Resources"]["Api"]["Properties"]["GatewayResponses"]


def render(body_template: str) -> dict:
    """A response template with API Gateway's variables filled in as it would: messageString is a quoted JSON
    string, requestId sits inside quotes already."""
    text = body_template.replace("$context.error.messageString", json.dumps("Forbidden")).replace(
        "$context.requestId", "r-1"
    )
    assert "$context" not in text, f"an unquoted or unknown variable is left: {text}"
    return json.loads(text)


def error_code(body: dict) -> str:
    assert set(body) == {"error", "request_id"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]["code"]


def template_codes() -> dict[str, str]:
    """Every code the template sends: gateway response type or WAF body key -> code."""
    resources = load_cfn(TEMPLATE)["Resources"]
    codes = {
        response_type: error_code(render(spec["ResponseTemplates"]["application/json"]))
        for response_type, spec in resources["Api"]["Properties"]["GatewayResponses"].items()
    }
    for key, body in resources["WebAcl"]["Properties"]["CustomResponseBodies"].items():
        assert body["ContentType"] == "APPLICATION_JSON", key
        codes[f"waf:{key}"] = error_code(json.loads(body["Content"]))
    return codes


def test_every_gateway_and_waf_code_is_lowercase_snake_case():
    codes = template_codes()
    assert len(codes) >= len(EXPECTED) + len(WAF_BODIES)
    for where, code in codes.items():
        assert SNAKE_CASE.fullmatch(code), f"{where}: code {code!r} is not lowercase snake_case"
        # a fixed code: never the response type passed through ($context.error.responseType is upper case)
        assert "$" not in code, where


def test_one_response_per_type_with_its_fixed_code_and_status(responses):
    assert set(responses) == set(EXPECTED)
    for response_type, (status, code, retry_after) in EXPECTED.items():
        spec = responses[response_type]
        assert spec.get("StatusCode") == status, response_type
        body = render(spec["ResponseTemplates"]["application/json"])
        assert error_code(body) == code, response_type
        assert body["request_id"] == "r-1", response_type
        headers = spec["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == {"Fn::Sub": "'${CorsAllowOrigin}'"}, response_type
        assert ("Retry-After" in headers) is retry_after, response_type
        if retry_after:
            assert headers["Retry-After"] == {"Fn::Sub": "'${RetryAfterSeconds}'"}, response_type


def test_waf_custom_bodies():
    acl = load_cfn(TEMPLATE)["Resources"]["WebAcl"]["Properties"]
    bodies = acl["CustomResponseBodies"]
    assert {key: error_code(json.loads(body["Content"])) for key, body in bodies.items()} == WAF_BODIES
    (rate_rule,) = [rule for rule in acl["Rules"] if "RateBasedStatement" in rule["Statement"]]
    custom = rate_rule["Action"]["Block"]["CustomResponse"]
    assert custom["ResponseCode"] == 429 and custom["CustomResponseBodyKey"] == "rate-limited"
    assert {h["Name"]: h["Value"] for h in custom["ResponseHeaders"]}["Retry-After"] == "60"


def test_every_template_code_is_an_api_error_code():
    """The function's error-code list (hematovision/errors.py, also the OpenAPI enum) holds every code the gateway
    and the WAF send, so a generated client knows each of them."""
    from hematovision import errors

    error_code_enum = getattr(errors, "ErrorCode", None)
    if error_code_enum is None:
        pytest.skip("hematovision.errors has no ErrorCode list yet (issue #21, the function's side)")
    known = {member.value for member in error_code_enum}
    missing = {where: code for where, code in template_codes().items() if code not in known}
    assert not missing, f"codes sent by template.yaml but not in hematovision.errors.ErrorCode: {missing}"


def test_translated_gateway_responses_keep_the_codes(translated):
    """After the SAM transform (what CloudFormation receives): the same types, codes and statuses."""
    body = json.loads(translated.read_text())["Resources"]["Api"]["Properties"]["Body"]
    out = body["x-amazon-apigateway-gateway-responses"]
    assert set(out) == set(EXPECTED)
    for response_type, (status, code, _) in EXPECTED.items():
        assert out[response_type].get("statusCode") == status, response_type
        assert error_code(render(out[response_type]["responseTemplates"]["application/json"])) == code
