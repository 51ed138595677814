"""Structural checks of template.yaml, infra/*.yaml and samconfig.toml that the linters do not make."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.infrastructure.infra_helpers import FUNCTION_DIR, HANDLER, INFRA, ROOT, all_template_paths, load_cfn

EXPECTED_ROUTES = {
    # (method, path): API key required
    ("POST", "/v1/classify"): True,
    ("POST", "/v1/classify/batch"): True,
    ("POST", "/v1/analyze"): True,
    ("GET", "/v1/model"): True,
    ("GET", "/health"): False,
    ("GET", "/openapi.json"): False,
    ("GET", "/"): False,
}
BINARY_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif", "multipart/form-data"}
# X-Ray's write actions support no resource-level permission: "*" is the narrowest resource there.
RESOURCE_STAR_ALLOWED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def resources_of(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def function(template: dict) -> dict:
    """The classifier: the one function behind the API (the other, PreTrafficHookFunction, only runs in deploys)."""
    functions = resources_of(template, "AWS::Serverless::Function")
    assert set(functions) == {"ClassifierFunction", "PreTrafficHookFunction"}, set(functions)
    return functions["ClassifierFunction"]


def param_default(template: dict, value):
    """Resolve {"Ref": Param} to the parameter's default; plain values pass through."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template.get("Parameters", {}):
        return template["Parameters"][value["Ref"]].get("Default")
    return value


def fn_prop(template: dict, name: str):
    props = function(template)["Properties"]
    if name in props:
        return props[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def routes(template: dict) -> dict[tuple[str, str], bool]:
    api_auth = resources_of(template, "AWS::Serverless::Api")["Api"]["Properties"].get("Auth", {})
    default_required = bool(api_auth.get("ApiKeyRequired", False))
    out = {}
    for event in function(template)["Properties"]["Events"].values():
        assert event["Type"] == "Api", event
        props = event["Properties"]
        assert props["RestApiId"] == {"Ref": "Api"}, props
        required = props.get("Auth", {}).get("ApiKeyRequired", default_required)
        out[(props["Method"].upper(), props["Path"])] = required
    return out


# ---------------------------------------------------------------- function
def test_runtime_architecture_handler(template):
    assert fn_prop(template, "Runtime") == "python3.12"
    assert fn_prop(template, "Architectures") == ["x86_64"]
    assert fn_prop(template, "Handler") == HANDLER
    assert fn_prop(template, "CodeUri") == "functions/classifier"
    assert function(template)["Metadata"]["BuildMethod"] == "makefile"
    assert (FUNCTION_DIR / "Makefile").read_text().count("build-ClassifierFunction:") == 1


def test_memory_and_timeout(template):
    memory = param_default(template, fn_prop(template, "MemorySize"))
    timeout = param_default(template, fn_prop(template, "Timeout"))
    assert 512 <= int(memory) <= 3008, memory
    assert 3 <= int(timeout) <= 29, "API Gateway gives up after 29 s; a longer timeout only costs money"
    params = template["Parameters"]
    assert params["FunctionMemorySize"]["MinValue"] >= 512 and params["FunctionMemorySize"]["MaxValue"] <= 10240
    assert params["FunctionTimeout"]["MaxValue"] <= 29


def test_snapstart_on_published_versions_with_alias(template):
    props = function(template)["Properties"]
    # a parameter (EnableSnapStart, its cost in the description): on by default and in prod
    assert props["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    assert props["AutoPublishAlias"], "SnapStart only applies to published versions: the API must call an alias"
    # SnapStart excludes provisioned concurrency, EFS and > 512 MB ephemeral storage
    assert "ProvisionedConcurrencyConfig" not in props and "FileSystemConfigs" not in props
    assert int(props.get("EphemeralStorage", {}).get("Size", 512)) <= 512


def test_reserved_concurrency_can_be_unreserved(template):
    value = function(template)["Properties"]["ReservedConcurrentExecutions"]
    assert value == {"Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, -1]}]
    }
    # -1 (no reservation) stays possible, for dev; the default is a finite cap (test_infra_security.py)
    assert template["Parameters"]["ReservedConcurrency"]["MinValue"] == -1
    assert template["Parameters"]["ReservedConcurrency"]["Default"] > 0


def test_environment(template):
    env = function(template)["Properties"]["Environment"]["Variables"]
    for name in (
        "LOG_LEVEL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "HEMATOVISION_INTRA_OP_THREADS",
        "HEMATOVISION_UNCERTAINTY_THRESHOLD",
    ):
        assert name in env, name
    assert env["OPENBLAS_NUM_THREADS"] == "1"  # no BLAS threads spinning against the one vCPU
    # the code reads these names (functions/classifier/hematovision/config.py)
    source = (FUNCTION_DIR / "hematovision" / "config.py").read_text()
    for name in env:
        if name.startswith("HEMATOVISION_"):
            assert f'"{name}"' in source, f"{name} set by the template but not read by hematovision/config.py"


def test_tracing_and_log_retention(template):
    assert fn_prop(template, "Tracing") == "Active"
    assert resources_of(template, "AWS::Serverless::Api")["Api"]["Properties"]["TracingEnabled"] is True
    log_groups = resources_of(template, "AWS::Logs::LogGroup")
    assert len(log_groups) >= 2
    for name, res in log_groups.items():
        assert res["Properties"].get("RetentionInDays"), f"{name} keeps logs forever"
    logging = function(template)["Properties"]["LoggingConfig"]
    assert logging["LogGroup"] == {"Ref": "ClassifierLogGroup"}


def test_model_is_not_fetched_at_runtime(template):
    """The model ships in the package: no S3/EFS access, no download URL in the environment."""
    env = function(template)["Properties"]["Environment"]["Variables"]
    assert not any("S3" in k or "URL" in k for k in env), env
    assert "HEMATOVISION_MODEL_DIR" not in env, "Lambda uses the bundled model next to the package"


# ---------------------------------------------------------------- API
def test_routes_and_api_keys(template):
    assert routes(template) == EXPECTED_ROUTES


def test_every_classify_route_requires_a_key_and_health_does_not(template):
    table = routes(template)
    for (method, path), required in table.items():
        if path.startswith("/v1/"):
            assert required, f"{method} {path} must require an API key"
    assert table[("GET", "/health")] is False


def test_binary_media_types(template):
    api = resources_of(template, "AWS::Serverless::Api")["Api"]["Properties"]
    declared = api["BinaryMediaTypes"]
    assert all("/" not in t for t in declared), "write media types with the OpenAPI escape ~1 for /"
    assert {t.replace("~1", "/") for t in declared} == BINARY_TYPES
    assert "*~1*" not in declared, "*/* would base64 every body, JSON included"


def test_api_stage_cors_access_logging(template):
    api = resources_of(template, "AWS::Serverless::Api")["Api"]["Properties"]
    assert api["StageName"] == {"Ref": "StageName"}
    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"
    cors = api["Cors"]
    assert "X-Api-Key" in cors["AllowHeaders"] and "POST" in cors["AllowMethods"]
    log = api["AccessLogSetting"]
    assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.requestId" in log["Format"] and "$context.identity.apiKeyId" in log["Format"]
    assert "Variables" in api
    # secure by default; preflights (sent by browsers without the key) stay open
    assert api["Auth"] == {"ApiKeyRequired": True, "AddApiKeyRequiredToCorsPreflight": False}
    # the account-level CloudWatch role that access logging needs is handled explicitly
    assert template["Conditions"]["CreateApiGatewayAccount"]
    assert template["Resources"]["ApiGatewayAccount"]["Type"] == "AWS::ApiGateway::Account"
    assert template["Resources"]["ApiGatewayCloudWatchRole"]["DeletionPolicy"] == "Retain"
    # API Gateway's own errors (403 key, 429 quota, 413 size) in the service's JSON error shape
    responses = api["GatewayResponses"]
    for key in ("DEFAULT_4XX", "DEFAULT_5XX"):
        template_json = responses[key]["ResponseTemplates"]["application/json"]
        assert '"error"' in template_json and "request_id" in template_json


def test_usage_plan_tiers_and_keys(template, nested):
    plans = nested["UsagePlans"]
    usage_plans = resources_of(plans, "AWS::ApiGateway::UsagePlan")
    assert set(usage_plans) == {"FreeUsagePlan", "StandardUsagePlan"}
    for name, plan in usage_plans.items():
        props = plan["Properties"]
        assert props["ApiStages"] == [{"ApiId": {"Ref": "ApiId"}, "Stage": {"Ref": "StageName"}}]
        tier = name.removesuffix("UsagePlan")
        assert props["Quota"] == {"Limit": {"Ref": f"{tier}QuotaLimit"}, "Period": {"Ref": f"{tier}QuotaPeriod"}}
        assert props["Throttle"] == {
            "RateLimit": {"Ref": f"{tier}ThrottleRateLimit"},
            "BurstLimit": {"Ref": f"{tier}ThrottleBurstLimit"},
        }
    keys = resources_of(plans, "AWS::ApiGateway::ApiKey")
    links = resources_of(plans, "AWS::ApiGateway::UsagePlanKey")
    assert {v["Properties"]["KeyId"]["Ref"] for v in links.values()} == set(keys)
    assert {v["Properties"]["UsagePlanId"]["Ref"] for v in links.values()} == set(usage_plans)
    for key in keys.values():
        assert "Value" not in key["Properties"], "never put a key value in a template"
    # the usage plans must be created after the stage: the stage name comes from Api.Stage
    assert template["Resources"]["UsagePlans"]["Properties"]["Parameters"]["StageName"] == {"Ref": "Api.Stage"}


def test_outputs(template):
    outputs = template["Outputs"]
    for name in (
        "ApiUrl",
        "FreeSampleApiKeyId",
        "StandardSampleApiKeyId",
        "FreeUsagePlanId",
        "StandardUsagePlanId",
        "FunctionAliasArn",
        "DashboardName",
        "AlarmTopicArn",
    ):
        assert name in outputs, name
    assert "${Api.Stage}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]


def test_one_version_segment_the_stage_is_the_environment(template, samconfig):
    """The stage names the environment and the routes carry the version: .../dev/v1/classify, never .../v1/v1/."""
    param = template["Parameters"]["StageName"]
    assert param["Default"] == "dev"
    pattern = param["AllowedPattern"]
    for good in ("dev", "prod", "staging"):
        assert re.fullmatch(pattern, good), good
    for bad in ("v1", "V2", "v10", "Dev", ""):
        assert not re.fullmatch(pattern, bad), f"StageName {bad!r} must be refused"
    for env in ("dev", "prod"):
        overrides = dict(
            item.partition("=")[::2] for item in samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
        )
        assert overrides["StageName"] == env
    assert all(path == "/" or path.startswith(("/v1/", "/health", "/openapi.json")) for _, path in routes(template))
    for name in ("ApiUrl", "ClassifyUrl"):
        url = template["Outputs"][name]["Value"]["Fn::Sub"]
        assert url.count("/v1") == (name == "ClassifyUrl"), f"{name}: {url}"
    assert template["Outputs"]["ClassifyUrl"]["Value"]["Fn::Sub"].endswith("/${Api.Stage}/v1/classify")


# ---------------------------------------------------------------- observability
def test_alarms_and_dashboard(nested):
    monitoring = nested["Monitoring"]
    alarms = resources_of(monitoring, "AWS::CloudWatch::Alarm").values()
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"] for a in alarms}
    assert metrics[("AWS/ApiGateway", "5XXError")]["Statistic"] == "Average", "5xx *rate*: Average of 0/1"
    assert metrics[("AWS/ApiGateway", "Latency")]["ExtendedStatistic"] == "p99"
    assert ("AWS/Lambda", "Errors") in metrics
    assert ("AWS/Lambda", "Throttles") in metrics
    for props in metrics.values():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert props["TreatMissingData"] == "notBreaching"
    for props in (metrics[("AWS/Lambda", "Errors")], metrics[("AWS/Lambda", "Throttles")]):
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert dims["Resource"] == {"Fn::Sub": "${FunctionName}:${FunctionAliasName}"}, "alarm on the live alias"
    (dashboard,) = resources_of(monitoring, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "AWS/ApiGateway" in body and "AWS/Lambda" in body


def test_monitoring_dimensions_match_the_api(template):
    params = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    api_name = template["Resources"]["Api"]["Properties"]["Name"]
    assert params["ApiName"] == api_name, "alarms must watch the API by the name it is created with"
    assert params["FunctionAliasName"] == template["Resources"]["ClassifierFunction"]["Properties"]["AutoPublishAlias"]


def test_nested_stack_parameters_match(template, nested):
    for logical_id, child in nested.items():
        passed = set(template["Resources"][logical_id]["Properties"]["Parameters"])
        declared = child.get("Parameters", {})
        required = {name for name, spec in declared.items() if "Default" not in spec}
        assert passed <= set(declared), f"{logical_id}: unknown parameters {passed - set(declared)}"
        assert required <= passed, f"{logical_id}: missing parameters {required - passed}"
        for name, value in template["Resources"][logical_id]["Properties"]["Parameters"].items():
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in template["Parameters"]:
                root_allowed = template["Parameters"][value["Ref"]].get("AllowedValues")
                child_allowed = declared[name].get("AllowedValues")
                if root_allowed and child_allowed:
                    assert set(map(str, root_allowed)) <= set(map(str, child_allowed)), name


# ---------------------------------------------------------------- IAM
def _statements(template: dict):
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", []) if isinstance(p, dict) and "PolicyDocument" in p]
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props["PolicyDocument"])
        for doc in docs:
            statements = doc["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                yield name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", all_template_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_wildcard_iam(path):
    template = load_cfn(path)
    for name, statement in _statements(template):
        actions = _as_list(statement.get("Action", []))
        assert "NotAction" not in statement and "NotResource" not in statement, name
        for action in actions:
            assert action != "*" and not str(action).endswith(":*"), f"{name}: wildcard action {action}"
        if statement.get("Effect") == "Allow" and "*" in _as_list(statement.get("Resource", [])):
            assert set(actions) <= RESOURCE_STAR_ALLOWED, f"{name}: Resource * for {actions}"
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            assert "Policies" not in res["Properties"], f"{name}: use the explicit least-privilege Role"
            assert "Role" in res["Properties"], f"{name}: SAM's default role attaches managed policies with *"


def test_function_role_is_scoped_to_its_log_group(template):
    # each function's role writes to its own log group only
    for role_name, group in (
        ("ClassifierFunctionRole", "ClassifierLogGroup"),
        ("PreTrafficHookRole", "PreTrafficHookLogGroup"),
    ):
        role = template["Resources"][role_name]["Properties"]
        assert "ManagedPolicyArns" not in role
        logs = [
            s
            for name, s in _statements(template)
            if name == role_name and any(str(a).startswith("logs:") for a in _as_list(s["Action"]))
        ]
        assert logs and all(s["Resource"] == {"Fn::GetAtt": [group, "Arn"]} for s in logs), role_name


# ---------------------------------------------------------------- samconfig
@pytest.fixture(scope="module")
def samconfig() -> dict:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_samconfig_environment(samconfig, template, env):
    deploy = samconfig[env]["deploy"]["parameters"]
    assert deploy["stack_name"] == f"hematovision-{env}"
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    params = template["Parameters"]
    overrides = deploy["parameter_overrides"]
    assert isinstance(overrides, list)
    for item in overrides:
        name, _, value = item.partition("=")
        assert name in params, f"{env}: {name} is not a template parameter"
        spec = params[name]
        if "AllowedValues" in spec:
            assert value in map(str, spec["AllowedValues"]), f"{env}: {name}={value}"
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"{env}: {name}={value}"
        if spec["Type"] == "Number":
            number = float(value)
            assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), f"{env}: {name}={value}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_function_size_follows_the_power_tuning_table(samconfig, template, env):
    """Memory and threads are chosen by `make bench-power` (issue #19): the template's defaults and both
    environments carry the choice it recorded in bench/results/power.json."""
    choice = json.loads((ROOT / "bench" / "results" / "power.json").read_text())["choice"]
    params = template["Parameters"]
    assert int(params["FunctionMemorySize"]["Default"]) == choice["memory_mb"]
    assert int(params["IntraOpThreads"]["Default"]) == choice["threads"]
    overrides = dict(item.partition("=")[::2] for item in samconfig[env]["deploy"]["parameters"]["parameter_overrides"])
    assert int(overrides.get("FunctionMemorySize", choice["memory_mb"])) == choice["memory_mb"]
    assert int(overrides.get("IntraOpThreads", choice["threads"])) == choice["threads"]


def test_nested_templates_are_the_only_infra_templates(nested):
    locations = {p.name for p in INFRA.glob("*.yaml")}
    assert locations == {"usage-plans.yaml", "monitoring.yaml"}
    assert set(nested) == {"UsagePlans", "Monitoring"}


# ---------------------------------------------------------------- after the SAM transform
def _translated(path) -> dict:
    import json

    return json.loads(path.read_text())


def test_translated_methods_keys_and_integrations(translated):
    out = _translated(translated)
    body = out["Resources"]["Api"]["Properties"]["Body"]
    assert body["components"]["securitySchemes"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    seen = {}
    for path, methods in body["paths"].items():
        for method, spec in methods.items():
            if method == "options":
                assert not spec.get("security"), f"CORS preflight {path} must not need a key"
                continue
            seen[(method.upper(), path)] = spec.get("security") == [{"api_key": []}]
            uri = spec["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert "${ClassifierFunctionAliaslive}" in uri, "the API must invoke the SnapStart alias"
    assert seen == EXPECTED_ROUTES
    assert set(body["x-amazon-apigateway-binary-media-types"]) == BINARY_TYPES


def test_translated_stage_and_function(translated):
    resources = _translated(translated)["Resources"]
    stages = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert len(stages) == 1, "OpenApiVersion in Globals avoids SAM's extra 'Stage' stage"
    stage = stages[0]["Properties"]
    assert stage["TracingEnabled"] is True and "AccessLogSetting" in stage
    # orders the stage after the account's CloudWatch role setting when this stack makes it
    assert stage["Variables"]["accountLogRole"]["Fn::If"][1] == {"Ref": "ApiGatewayAccount"}
    fn = resources["ClassifierFunction"]["Properties"]
    assert fn["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    assert fn["Runtime"] == "python3.12" and fn["Architectures"] == ["x86_64"]
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert not fn.get("ManagedPolicyArns")
    aliases = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert len(aliases) == 1 and aliases[0]["Properties"]["Name"] == "live"
