"""Cost/abuse bounds and edge hygiene of the templates (issue #20, points 3 and 4).

Each test asserts one item: on the template as written, on samconfig.toml's environments, and where
SAM rewrites it, on the translated template (the `translated` fixture). Fixtures: conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
UNKEYED_ROUTES = {("GET", "/"), ("GET", "/health"), ("GET", "/openapi.json")}
POST_ROUTES = {"/v1/classify", "/v1/classify/batch", "/v1/analyze"}


# ---------------------------------------------------------------- helpers
def resources_of(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def api_props(template: dict) -> dict:
    return template["Resources"]["Api"]["Properties"]


def events(template: dict) -> dict[str, dict]:
    return template["Resources"]["ClassifierFunction"]["Properties"]["Events"]


def default(template: dict, name: str):
    return template["Parameters"][name]["Default"]


def overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    items = config[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in items)


def deployed_value(template: dict, env: str, name: str) -> str:
    """What `sam deploy --config-env ENV` of a new stack uses: the override, else the template default."""
    return overrides(env).get(name, str(default(template, name)))


def translated_resources(path: Path) -> dict:
    return json.loads(path.read_text())["Resources"]


def gateway_response(template: dict, response_type: str) -> dict:
    return api_props(template)["GatewayResponses"][response_type]


def sub_of(value) -> str:
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    return value["Fn::Sub"]


# ---------------------------------------------------------------- 3. cost and abuse bounds
def test_unkeyed_routes_have_their_own_low_throttle(template):
    unkeyed = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"])
        for e in events(template).values()
        if e["Properties"].get("Auth", {}).get("ApiKeyRequired") is False
    }
    assert unkeyed == UNKEYED_ROUTES
    settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in api_props(template)["MethodSettings"]}
    for method, path in unkeyed:
        # MethodSettings escape "/" as "~1"; the root resource is "/"
        resource_path = "/" if path == "/" else "/" + path.replace("/", "~1")
        setting = settings[(method, resource_path)]
        assert setting["ThrottlingRateLimit"] == {"Ref": "PublicThrottleRateLimit"}, path
        assert setting["ThrottlingBurstLimit"] == {"Ref": "PublicThrottleBurstLimit"}, path
    stage_default = settings[("*", "/*")]
    assert stage_default["ThrottlingRateLimit"] == {"Ref": "StageThrottleRateLimit"}
    for env in ("dev", "prod"):
        public = float(deployed_value(template, env, "PublicThrottleRateLimit"))
        keyed = float(deployed_value(template, env, "StageThrottleRateLimit"))
        assert public < keyed, f"{env}: unkeyed routes must be throttled below the keyed default"
        assert float(deployed_value(template, env, "PublicThrottleBurstLimit")) < float(
            deployed_value(template, env, "StageThrottleBurstLimit")
        )
    assert default(template, "PublicThrottleRateLimit") < default(template, "StageThrottleRateLimit")


def test_translated_stage_keeps_the_public_throttles(translated):
    (stage,) = [r for r in translated_resources(translated).values() if r["Type"] == "AWS::ApiGateway::Stage"]
    paths = {(s["HttpMethod"], s["ResourcePath"]) for s in stage["Properties"]["MethodSettings"]}
    assert {("GET", "/"), ("GET", "/~1health"), ("GET", "/~1openapi.json"), ("*", "/*")} <= paths


def test_reserved_concurrency_is_finite_in_prod(template):
    props = template["Resources"]["ClassifierFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert default(template, "ReservedConcurrency") > 0, "a stack deployed without samconfig is capped too"
    assert int(deployed_value(template, "prod", "ReservedConcurrency")) > 0
    # dev may stay unreserved (-1), never the kill switch by accident
    assert int(deployed_value(template, "dev", "ReservedConcurrency")) != 0


def test_lambda_throttle_becomes_503_with_retry_after(template):
    failure = gateway_response(template, "INTEGRATION_FAILURE")
    assert failure["StatusCode"] == "503"
    headers = failure["ResponseParameters"]["Headers"]
    assert sub_of(headers["Retry-After"]) == "'${RetryAfterSeconds}'"
    body = failure["ResponseTemplates"]["application/json"]
    assert '"error"' in body and '"service_unavailable"' in body and "$context.requestId" in body
    # API Gateway's own 429 and any other 5xx it generates carry Retry-After too
    for response_type in ("THROTTLED", "DEFAULT_5XX"):
        headers = gateway_response(template, response_type)["ResponseParameters"]["Headers"]
        assert sub_of(headers["Retry-After"]) == "'${RetryAfterSeconds}'", response_type
    assert 1 <= default(template, "RetryAfterSeconds") <= 60


def test_translated_gateway_responses(translated):
    body = translated_resources(translated)["Api"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert responses["INTEGRATION_FAILURE"]["statusCode"] == "503"
    for response_type in ("INTEGRATION_FAILURE", "THROTTLED", "DEFAULT_5XX"):
        assert "gatewayresponse.header.Retry-After" in responses[response_type]["responseParameters"]


def test_waf_web_acl_is_optional_and_on_in_prod(template):
    assert template["Conditions"]["UseWaf"] == {"Fn::Equals": [{"Ref": "EnableWaf"}, "true"]}
    assert deployed_value(template, "prod", "EnableWaf") == "true"
    (acl,) = resources_of(template, "AWS::WAFv2::WebACL").values()
    assert acl["Condition"] == "UseWaf"
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    assert len({r["Priority"] for r in rules.values()}) == len(rules)

    (rate,) = [r for r in rules.values() if "RateBasedStatement" in r["Statement"]]
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP" and statement["Limit"] == {"Ref": "WafRateLimitPerIp"}
    response = rate["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    assert {h["Name"] for h in response["ResponseHeaders"]} == {"Retry-After"}
    assert response["CustomResponseBodyKey"] in props["CustomResponseBodies"]

    (managed,) = [r for r in rules.values() if "ManagedRuleGroupStatement" in r["Statement"]]
    group = managed["Statement"]["ManagedRuleGroupStatement"]
    assert (group["VendorName"], group["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    assert managed["OverrideAction"] == {"None": {}}, "the group's rules must block, not only count"
    counted = {o["Name"]: o["ActionToUse"] for o in group.get("RuleActionOverrides", [])}
    # the 8 KB body-size rule would refuse every image upload
    assert counted.get("SizeRestrictions_BODY") == {"Count": {}}
    assert all(name.endswith("_BODY") for name in counted), f"only body rules may be relaxed: {counted}"

    (association,) = resources_of(template, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Condition"] == "UseWaf"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    arn = sub_of(association["Properties"]["ResourceArn"])
    assert arn.endswith("/restapis/${Api}/stages/${Api.Stage}"), "associate with the stage (created first)"


def test_cost_budget_on_actual_and_forecast_spend(template, nested):
    monitoring = nested["Monitoring"]
    (budget,) = resources_of(monitoring, "AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetType"] == "COST" and props["Budget"]["TimeUnit"] == "MONTHLY"
    assert props["Budget"]["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    kinds = {n["Notification"]["NotificationType"] for n in props["NotificationsWithSubscribers"]}
    assert kinds == {"ACTUAL", "FORECASTED"}
    for notification in props["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": "BudgetTopic"}}]
    # Budgets may publish only with a topic policy naming it, scoped to this account
    assert budget["DependsOn"] == "BudgetTopicPolicy"
    (statement,) = monitoring["Resources"]["BudgetTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "budgets.amazonaws.com"} and statement["Action"] == "sns:Publish"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert monitoring["Resources"]["BudgetEmailSubscription"]["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    passed = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert passed["MonthlyBudgetUsd"] == {"Ref": "MonthlyBudgetUsd"}
    for env in ("dev", "prod"):
        assert float(deployed_value(template, env, "MonthlyBudgetUsd")) > 0, f"{env} has no budget"


def test_request_rate_alarm(template, nested):
    alarms = resources_of(nested["Monitoring"], "AWS::CloudWatch::Alarm").values()
    (alarm,) = [a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "Count"]
    assert alarm["Namespace"] == "AWS/ApiGateway" and alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 60 and alarm["Threshold"] == {"Ref": "AlarmRequestsPerMinute"}
    assert {d["Name"] for d in alarm["Dimensions"]} == {"ApiName", "Stage"}
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    passed = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert passed["AlarmRequestsPerMinute"] == {"Ref": "AlarmRequestsPerMinute"}


def test_sample_keys_are_disabled_outside_dev(template, nested):
    plans = nested["UsagePlans"]
    keys = resources_of(plans, "AWS::ApiGateway::ApiKey")
    assert keys
    for name, key in keys.items():
        assert key["Properties"]["Enabled"] == {"Fn::If": ["SampleKeysOn", True, False]}, name
    assert plans["Conditions"]["SampleKeysOn"] == {"Fn::Equals": [{"Ref": "SampleApiKeysEnabled"}, "true"]}
    assert plans["Parameters"]["SampleApiKeysEnabled"]["Default"] == "false"
    assert default(template, "SampleApiKeysEnabled") == "false"
    passed = template["Resources"]["UsagePlans"]["Properties"]["Parameters"]
    assert passed["SampleApiKeysEnabled"] == {"Ref": "SampleApiKeysEnabled"}
    assert deployed_value(template, "prod", "SampleApiKeysEnabled") == "false"
    assert deployed_value(template, "dev", "SampleApiKeysEnabled") == "true"


# ---------------------------------------------------------------- 4. edge hygiene
def test_tls_1_2_minimum(template, translated):
    assert api_props(template)["SecurityPolicy"] == "TLS_1_2"
    assert "EndpointAccessMode" not in api_props(template), "the legacy TLS_1_2 policy takes no access mode"
    (rest_api,) = [r for r in translated_resources(translated).values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert rest_api["Properties"]["SecurityPolicy"] == "TLS_1_2"
    # No custom domain yet; one added later must carry a TLS 1.2+ policy too.
    tls12 = re.compile(r"^(TLS_1_2|SecurityPolicy_TLS1[23]_.*)$")
    for resource in resources_of(template, "AWS::ApiGateway::DomainName").values():
        assert tls12.match(str(resource["Properties"].get("SecurityPolicy"))), resource
    domain = api_props(template).get("Domain")
    if domain:
        assert tls12.match(str(domain.get("SecurityPolicy"))), domain


def test_prod_cors_allows_no_origin(template):
    spec = template["Parameters"]["CorsAllowOrigin"]
    pattern = re.compile(spec["AllowedPattern"])
    for ok in ("none", "*", "https://app.example.com", "https://lab.example:8443"):
        assert pattern.fullmatch(ok), ok
    for bad in ("null", "", "https://*.example.com", "https://a.example, https://b.example", "app.example.com"):
        assert not pattern.fullmatch(bad), bad
    prod = deployed_value(template, "prod", "CorsAllowOrigin")
    assert prod == "none" or prod.startswith("https://"), f"prod CORS origin {prod!r}"
    # one parameter drives the preflight, API Gateway's own errors and the function's own responses
    assert sub_of(api_props(template)["Cors"]["AllowOrigin"]) == "'${CorsAllowOrigin}'"
    for response_type, response in api_props(template)["GatewayResponses"].items():
        origin = response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"]
        assert sub_of(origin) == "'${CorsAllowOrigin}'", response_type
    env = template["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    assert env["HEMATOVISION_CORS_ALLOW_ORIGIN"] == {"Ref": "CorsAllowOrigin"}


def test_logging_role_trust_is_conditioned_and_off_by_default(template):
    assert default(template, "ConfigureApiGatewayAccount") == "false"
    role = template["Resources"]["ApiGatewayCloudWatchRole"]
    assert role["Condition"] == "CreateApiGatewayAccount"
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # one stack per account and region owns the shared setting: never both environments
    owners = [env for env in ("dev", "prod") if deployed_value(template, env, "ConfigureApiGatewayAccount") == "true"]
    assert len(owners) <= 1, owners


def test_access_log_group_is_retained(template):
    group = template["Resources"]["ApiAccessLogGroup"]
    assert group["DeletionPolicy"] == "Retain" and group["UpdateReplacePolicy"] == "Retain"


def test_optional_kms_for_log_groups_and_topics(template, nested):
    assert template["Conditions"]["UseKms"] == {"Fn::Equals": [{"Ref": "EnableKmsEncryption"}, "true"]}
    assert default(template, "EnableKmsEncryption") == "false"
    for name in resources_of(template, "AWS::Logs::LogGroup"):
        props = template["Resources"][name]["Properties"]
        assert props["KmsKeyId"] == {
            "Fn::If": ["UseKms", {"Fn::GetAtt": ["EncryptionKey", "Arn"]}, {"Ref": "AWS::NoValue"}]
        }, name
    key = template["Resources"]["EncryptionKey"]
    assert key["Condition"] == "UseKms" and key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain", "the retained access-log group must stay readable"
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    for sid, statement in statements.items():
        if statement["Principal"] != {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}:
            assert statement.get("Condition"), f"{sid}: service principals need a condition"
    logs = statements["CloudWatchLogsOfThisAccount"]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]

    passed = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert passed["KmsKeyArn"] == {"Fn::If": ["UseKms", {"Fn::GetAtt": ["EncryptionKey", "Arn"]}, ""]}
    topics = resources_of(nested["Monitoring"], "AWS::SNS::Topic")
    assert set(topics) == {"AlarmTopic", "BudgetTopic"}
    for name, topic in topics.items():
        assert topic["Properties"]["KmsMasterKeyId"] == {
            "Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]
        }, name


def test_post_routes_are_validated_before_lambda(template):
    models = api_props(template)["Models"]
    for event in events(template).values():
        props = event["Properties"]
        if props["Method"].upper() != "POST":
            assert "RequestModel" not in props and "RequestParameters" not in props, props["Path"]
            continue
        assert props["Path"] in POST_ROUTES
        assert props["RequestParameters"] == [
            {"method.request.header.Content-Type": {"Required": True, "Caching": False}}
        ]
        model = props["RequestModel"]
        assert model["ValidateBody"] is True and model["ValidateParameters"] is True
        assert model["Model"] in models
        assert not model.get("Required"), "a body model must never make a raw or multipart upload fail"


def test_translated_validator_leaves_raw_and_multipart_bodies_alone(translated):
    body = translated_resources(translated)["Api"]["Properties"]["Body"]
    validators = body["x-amazon-apigateway-request-validators"]
    for path, methods in body["paths"].items():
        for method, spec in methods.items():
            name = spec.get("x-amazon-apigateway-request-validator")
            if method == "post":
                assert path in POST_ROUTES
                assert validators[name] == {"validateRequestBody": True, "validateRequestParameters": True}
                # API Gateway validates a body only against the model of its Content-Type: only JSON
                # bodies have one, so raw image bytes and multipart uploads pass through unchecked
                assert set(spec["requestBody"]["content"]) == {"application/json"}
                assert not spec["requestBody"].get("required")
                (parameter,) = spec["parameters"]
                assert (parameter["in"], parameter["name"], parameter["required"]) == ("header", "Content-Type", True)
            else:
                assert name is None, f"{method.upper()} {path} must not be validated"


# The three valid upload forms must pass; the JSON shapes the function refuses with 400 may be refused here.
VALID_JSON = {
    "ClassifyJson": [{"image": "/9j/4AAQ"}, {"image": "data:image/png;base64,iVBO", "filename": "a.png"}],
    "ClassifyBatchJson": [{"images": ["/9j/4AAQ"]}, {"images": ["/9j/", {"image": "iVBO", "filename": "b.png"}]}],
}
INVALID_JSON = {
    "ClassifyJson": [{}, {"image": 5}, [], "x", {"images": ["/9j/"]}],
    "ClassifyBatchJson": [{}, {"images": []}, {"images": "x"}, {"image": "/9j/"}],
}


def test_json_models_accept_every_valid_json_upload(template, tmp_path):
    if not TOOLS_PYTHON.exists():
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(".venv-tools missing (CI=true)")
        pytest.skip(".venv-tools missing - run `make tools-venv` (jsonschema comes with cfn-lint)")
    cases = tmp_path / "cases.json"
    cases.write_text(
        json.dumps({"models": api_props(template)["Models"], "valid": VALID_JSON, "invalid": INVALID_JSON})
    )
    # API Gateway validates models as JSON Schema draft 4
    script = (
        "import json, sys, jsonschema\n"
        "c = json.load(open(sys.argv[1]))\n"
        "out = {}\n"
        "for kind in ('valid', 'invalid'):\n"
        "    for name, docs in c[kind].items():\n"
        "        v = jsonschema.Draft4Validator(c['models'][name])\n"
        "        out.setdefault(kind, []).extend([name, d, v.is_valid(d)] for d in docs)\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(TOOLS_PYTHON), "-c", script, str(cases)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert all(ok for _, _, ok in result["valid"]), [r for r in result["valid"] if not r[2]]
    assert not any(ok for _, _, ok in result["invalid"]), [r for r in result["invalid"] if r[2]]


# ---------------------------------------------------------------- README
def _section(readme: str, title: str) -> str:
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^#{{1,3}} )", readme, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(2)


def test_readme_security_and_upgrade_notes():
    readme = (ROOT / "README.md").read_text()
    security = _section(readme, "Security")
    assert re.search(r"API keys meter.{0,40}not authenticate", security, re.S | re.I)
    for option in ("AWS_IAM", "Cognito", "Lambda authorizer"):
        assert option in security, option
    limits = _section(readme, "Limits")
    for item in ("ReservedConcurrency", "503", "Retry-After", "WAF", "PublicThrottleRateLimit"):
        assert item in limits, item
    upgrade = _section(readme, "Upgrade notes")
    for item in ("CorsAllowOrigin", "SampleApiKeysEnabled", "ConfigureApiGatewayAccount", "ApiGatewayCloudWatchRole"):
        assert item in upgrade, item
