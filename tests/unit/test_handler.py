"""The Lambda handler with the API Gateway events in events/ (random-weights model: no label assertions)."""

import base64
import io
import json

import pytest

from tests import fakes

EXPECTED = {
    "classify-raw-jpeg": 200,
    "classify-raw-jpeg-explain": 200,
    "classify-json": 200,
    "classify-multipart": 200,
    "classify-missing-body": 400,
    "classify-text-plain": 415,
    "classify-truncated-jpeg": 422,
    "classify-malformed-json": 400,
    "batch-json": 200,
    "batch-multipart": 200,
    "model": 200,
    "health": 200,
    "openapi": 200,
    "root": 200,
}


def invoke(api, event, context):
    response = api.lambda_handler(event, context)
    assert set(response) >= {"statusCode", "body"}
    assert isinstance(response["body"], str)
    return response["statusCode"], json.loads(response["body"]), response


@pytest.mark.parametrize("name, status", sorted(EXPECTED.items()))
def test_event_files(api, context, load_event, name, status):
    event = load_event(name)
    code, body, response = invoke(api, event, context)
    assert code == status, body
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    assert headers.get("content-type", "").startswith("application/json")
    if status >= 400:
        assert set(body) == {"error", "request_id"} and set(body["error"]) == {"code", "message"}
        assert body["request_id"] == event["requestContext"]["requestId"]
        assert "Traceback" not in response["body"] and "/work" not in response["body"]


def test_classify_response_shape(api, context, load_event):
    _, body, _ = invoke(api, load_event("classify-raw-jpeg"), context)
    assert body["label"] in fakes.CLASSES
    assert set(body["probabilities"]) == set(fakes.CLASSES)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"].values())
    assert isinstance(body["uncertain"], bool) and body["description"]
    assert body["model"] == {"name": "hematovision-random-test-model", "version": "0.0.0-random"}
    assert set(body["timings"]) == {"decode_ms", "inference_ms", "total_ms", "locate_ms"}
    assert "not a diagnosis" in body["disclaimer"]
    assert body["heatmap"] is None and (body["width"], body["height"]) == (320, 240)


def test_all_upload_forms_agree(api, context, load_event):
    results = [
        invoke(api, load_event(n), context)[1]["probabilities"]
        for n in ("classify-raw-jpeg", "classify-json", "classify-multipart")
    ]
    assert results[0] == results[1] == results[2]


def test_explain_heatmap(api, context, load_event):
    _, body, _ = invoke(api, load_event("classify-raw-jpeg-explain"), context)
    assert body["heatmap"]["label"] == body["label"]
    assert base64.b64decode(body["heatmap"]["data"]).startswith(b"\x89PNG")


def test_explain_invalid_value(api, context, load_event):
    event = load_event("classify-raw-jpeg")
    event["queryStringParameters"] = {"explain": "perhaps"}
    event["multiValueQueryStringParameters"] = {"explain": ["perhaps"]}
    code, body, _ = invoke(api, event, context)
    assert code == 400 and body["error"]["code"] == "invalid_request"


def test_batch_per_item(api, context, load_event):
    _, body, _ = invoke(api, load_event("batch-json"), context)
    assert (body["count"], body["succeeded"], body["failed"]) == (4, 2, 2)
    assert [r["status"] for r in body["results"]] == [200, 200, 400, 415]
    assert body["results"][1]["result"]["filename"] == "second.jpg"
    _, body, _ = invoke(api, load_event("batch-multipart"), context)
    assert body["succeeded"] == 2 and [r["result"]["filename"] for r in body["results"]] == ["a.jpg", "b.jpg"]


def test_model_card_as_is(api, context, load_event, fake_model_dir):
    _, body, _ = invoke(api, load_event("model"), context)
    assert body == json.loads((fake_model_dir / "model_card.json").read_text())


def test_openapi_document(api, context, load_event):
    _, spec, _ = invoke(api, load_event("openapi"), context)
    assert spec["openapi"].startswith("3.")
    assert {"/v1/classify", "/v1/classify/batch", "/v1/model", "/health"} <= set(spec["paths"])
    post = spec["paths"]["/v1/classify"]["post"]
    assert {"image/jpeg", "application/json", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert post["security"] == [{"apiKey": []}] and "security" not in spec["paths"]["/health"]["get"]
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"


@pytest.mark.parametrize(
    "mutate, status",
    [
        (lambda e: e.update(body="%%%not base64", isBase64Encoded=True), 400),
        (lambda e: e.update(body=base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()), 415),
        (lambda e: e.update(body=base64.b64encode(fakes.synthetic_cell(fmt="PNG")[:3000]).decode()), 422),
        (lambda e: e.update(body=base64.b64encode(fakes.synthetic_cell(width=4, height=4, fmt="PNG")).decode()), 422),
        (lambda e: e.update(path="/v1/unknown", resource="/v1/unknown"), 404),
        (lambda e: e.update(httpMethod="DELETE"), 404),
    ],
)
def test_bad_requests_are_4xx(api, context, load_event, mutate, status):
    event = load_event("classify-raw-jpeg")
    mutate(event)
    code, body, _ = invoke(api, event, context)
    assert code == status and "error" in body


def test_not_an_api_gateway_event_is_a_json_500(api, context):
    code, body, _ = invoke(api, {"unexpected": True}, context)
    assert code == 500 and body["error"]["code"] == "internal_error"


def test_unexpected_exception_is_a_json_500_without_trace(api, context, load_event, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api.CLASSIFIER, "classify", boom)
    code, body, response = invoke(api, load_event("classify-raw-jpeg"), context)
    assert code == 500 and body["error"]["code"] == "internal_error"
    assert "secret" not in response["body"] and "Traceback" not in response["body"]


def test_logs_and_metrics_never_carry_image_data(api, context, load_event, capsys):
    handler = api.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        for name in (
            "classify-raw-jpeg",
            "classify-json",
            "classify-multipart",
            "batch-json",
            "classify-truncated-jpeg",
        ):
            event = load_event(name)
            invoke(api, event, context)
            out = capsys.readouterr()
            logged = stream.getvalue() + out.out + out.err
            body = event["body"]
            assert body[:64] not in logged and body[-64:] not in logged
            assert f'"correlation_id":"{event["requestContext"]["requestId"]}"' in logged
    finally:
        handler.setStream(previous)


def test_emf_metrics(api, context, load_event, capsys):
    invoke(api, load_event("classify-raw-jpeg"), context)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for line in lines for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Requests", "Latency", "InferenceLatency"} <= names
    assert any(n.startswith("Predictions") for n in names)
