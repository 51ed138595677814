"""The OpenAPI document a client is generated from (issue #21): valid, servers right locally and deployed, every
error status documented where it can occur with the error schema, the model card typed, the key scheme applied."""

import json

import pytest
from openapi_spec_validator import validate

from hematovision.handlers.utils.openapi import DEPLOYED_URL
from tests.unit.test_handler import invoke

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
EVERY_ROUTE = {"403", "404", "429", "500", "502", "503", "504"}
EXPECTED = {  # (method, path) -> the statuses documented, besides 200
    ("post", "/v1/classify"): EVERY_ROUTE | {"400", "413", "415", "422"},
    ("post", "/v1/analyze"): EVERY_ROUTE | {"400", "413", "415", "422"},
    ("post", "/v1/classify/batch"): EVERY_ROUTE | {"400", "413", "415"},  # a bad image is a 200's item
    ("get", "/v1/model"): EVERY_ROUTE,
    ("get", "/health"): EVERY_ROUTE,
    ("get", "/"): EVERY_ROUTE,
}
KEYED = {("post", "/v1/classify"), ("post", "/v1/analyze"), ("post", "/v1/classify/batch"), ("get", "/v1/model")}


def served_spec(api, context, load_event, headers=None):
    event = load_event("openapi")
    event["headers"] = {**(event.get("headers") or {}), **(headers or {})}
    status, spec, _ = invoke(api, event, context)
    assert status == 200
    return spec


@pytest.fixture
def spec(api, context, load_event, monkeypatch):
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    return served_spec(api, context, load_event)


def test_the_spec_validates(spec):
    validate(spec)  # openapi-spec-validator: raises on any violation of the OpenAPI 3.1 schema


def test_deployed_server_has_the_stage_as_a_variable(spec):
    (server,) = spec["servers"]
    assert server["url"] == DEPLOYED_URL and server["url"].endswith("/{stage}")  # routes carry /v1, once
    stage = server["variables"]["stage"]
    assert stage["default"] == "dev" and stage["enum"] == ["dev", "prod"]
    assert all(path.startswith("/v1/") for path in spec["paths"] if path not in ("/", "/health"))


def test_served_locally_the_local_url_comes_first(api, context, load_event, monkeypatch):
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")
    local = served_spec(api, context, load_event, {"Host": "127.0.0.1:4321"})
    assert local["servers"][0]["url"] == "http://127.0.0.1:4321"
    assert local["servers"][1]["url"] == DEPLOYED_URL
    validate(local)
    odd = served_spec(api, context, load_event, {"Host": "evil.example/<script>"})
    assert [s["url"] for s in odd["servers"]] == [DEPLOYED_URL]  # a Host that is not a host is not echoed


@pytest.mark.parametrize("method, path", sorted(EXPECTED))
def test_errors_documented_where_they_occur(spec, method, path):
    responses = spec["paths"][path][method]["responses"]
    assert set(responses) == EXPECTED[(method, path)] | {"200"}
    for status in EXPECTED[(method, path)]:
        assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF, status
        assert "error.code: " in responses[status]["description"]
    codes_429 = responses["429"]["description"]
    assert "throttled" in codes_429 and "rate_limited" in codes_429
    assert ("quota_exceeded" in codes_429) == ((method, path) in KEYED)  # only keyed routes have a usage plan
    assert ("invalid_api_key" in responses["403"]["description"]) == ((method, path) in KEYED)


def test_no_powertools_422_validation_answer(spec):
    assert "HTTPValidationError" not in json.dumps(spec)  # a failed validation is our 400 invalid_request


def test_key_scheme_applied_to_keyed_routes_only(spec):
    assert spec["components"]["securitySchemes"] == {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert (operation.get("security") == [{"apiKey": []}]) == ((method, path) in KEYED), (method, path)


def test_model_route_has_the_card_schema(api, context, load_event, spec, fake_model_dir):
    from hematovision.models.output import ModelCard

    ok = spec["paths"]["/v1/model"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ModelCard"}
    card = spec["components"]["schemas"]["ModelCard"]
    assert {"name", "version", "classes"} <= set(card["required"]) and "uncertainty" in card["properties"]
    _, served, _ = invoke(api, load_event("model"), context)
    assert ModelCard.model_validate(served).model_dump(exclude_unset=True) == served  # what it returns fits


def test_the_committed_card_fits_the_schema():
    from hematovision import config
    from hematovision.models.output import ModelCard

    card = json.loads((config.default_model_dir() / config.CARD_FILE).read_text(encoding="utf-8"))
    parsed = ModelCard.model_validate(card)
    assert (
        parsed.uncertainty is not None
        and parsed.uncertainty.confidence_threshold == card["uncertainty"]["confidence_threshold"]
    )
