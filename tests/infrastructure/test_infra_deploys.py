"""Safe deploys in template.yaml: the canary and its alarms, the PreTraffic hook, SnapStart as a parameter with its
cost, the account-level logging role in one environment, the optional custom domain - in the template and after the
SAM transform (what CloudFormation receives)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.infrastructure.infra_helpers import ROOT, TEMPLATE, load_cfn

HOOK_ALARMS = ["FunctionErrorsAlarmName", "Api5xxRateAlarmName"]


@pytest.fixture(scope="module")
def cfn() -> dict:
    return load_cfn(TEMPLATE)


@pytest.fixture(scope="module")
def out(translated) -> dict:
    return json.loads(translated.read_text())["Resources"]


def overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return dict(item.split("=", 1) for item in config[env]["deploy"]["parameters"]["parameter_overrides"])


def props(cfn: dict, logical_id: str) -> dict:
    return cfn["Resources"][logical_id]["Properties"]


# ---------------------------------------------------------------- canary and alarms
def test_canary_gated_on_the_existing_alarms_with_a_pre_traffic_hook(cfn):
    fn = props(cfn, "ClassifierFunction")
    assert fn["AutoPublishAlias"] == "live"
    preference = fn["DeploymentPreference"]
    assert preference["Type"].startswith("Canary10Percent") and preference.get("Enabled", True) is True
    # 10 minutes: the API 5xx-rate alarm needs 2 of 3 five-minute periods, a 5-minute canary could not see it
    assert int(re.fullmatch(r"Canary10Percent(\d+)Minutes", preference["Type"]).group(1)) >= 10
    assert preference["Alarms"] == [{"Fn::GetAtt": ["Monitoring", f"Outputs.{name}"]} for name in HOOK_ALARMS]
    assert preference["Hooks"] == {"PreTraffic": {"Ref": "PreTrafficHookFunction"}}


def test_the_gating_alarms_are_the_monitoring_stacks_alarms(cfn, nested):
    monitoring = nested["Monitoring"]
    outputs = monitoring["Outputs"]
    assert outputs["FunctionErrorsAlarmName"]["Value"] == {"Ref": "FunctionErrorsAlarm"}
    assert outputs["Api5xxRateAlarmName"]["Value"] == {"Ref": "Api5xxRateAlarm"}
    errors = monitoring["Resources"]["FunctionErrorsAlarm"]["Properties"]
    # errors of the alias CodeDeploy shifts: both versions' invocations during the canary
    dims = {d["Name"]: d["Value"] for d in errors["Dimensions"]}
    assert dims["Resource"] == {"Fn::Sub": "${FunctionName}:${FunctionAliasName}"}
    assert errors["Threshold"] == 1 and errors["EvaluationPeriods"] == 1
    assert monitoring["Resources"]["Api5xxRateAlarm"]["Properties"]["MetricName"] == "5XXError"
    # the alarms watch the stage by name, not Api.Stage: Api.Stage -> deployment group -> alias -> Api is a cycle
    assert props(cfn, "Monitoring")["Parameters"]["StageName"] == {"Ref": "StageName"}


def test_translated_deployment_group_and_alias(out):
    (group,) = [r for r in out.values() if r["Type"] == "AWS::CodeDeploy::DeploymentGroup"]
    group = group["Properties"]
    alarms = group["AlarmConfiguration"]
    assert alarms["Enabled"] is True
    assert [a["Name"] for a in alarms["Alarms"]] == [
        {"Fn::GetAtt": ["Monitoring", f"Outputs.{name}"]} for name in HOOK_ALARMS
    ]
    assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(group["AutoRollbackConfiguration"]["Events"])
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    config = json.dumps(group["DeploymentConfigName"])
    assert "CodeDeployDefault.Lambda" in config and "Canary10Percent10Minutes" in config
    (alias,) = [r for r in out.values() if r["Type"] == "AWS::Lambda::Alias"]
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}


# ---------------------------------------------------------------- the hook
def test_pre_traffic_hook_function(cfn):
    hook = cfn["Resources"]["PreTrafficHookFunction"]
    assert hook["Metadata"]["BuildMethod"] == "makefile"
    p = hook["Properties"]
    assert p["CodeUri"] == "hooks" and p["Handler"] == "pre_traffic.handler"
    assert (ROOT / "hooks" / "pre_traffic.py").is_file() and (ROOT / "hooks" / "neutrophil.jpg").is_file()
    # SAM's CodeDeploy role (AWSCodeDeployRoleForLambda) may invoke only functions named CodeDeployHook_*
    assert p["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")
    assert p["Environment"]["Variables"]["TARGET_FUNCTION_VERSION"] == {"Ref": "ClassifierFunction.Version"}
    assert "DeploymentPreference" not in p and "AutoPublishAlias" not in p, "the hook is not itself canaried"
    assert 30 <= p["Timeout"] <= 900 and p["MemorySize"] <= 256
    assert p["Role"] == {"Fn::GetAtt": ["PreTrafficHookRole", "Arn"]}


def test_pre_traffic_hook_role_is_least_privilege(cfn):
    statements = {
        policy["PolicyName"]: policy["PolicyDocument"]["Statement"]
        for policy in props(cfn, "PreTrafficHookRole")["Policies"]
    }
    actions = {
        action
        for stmts in statements.values()
        for s in stmts
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "lambda:InvokeFunction",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
    }
    (invoke,) = statements["invoke-the-new-version"]
    assert invoke["Resource"] == {"Ref": "ClassifierFunction.Version"}, "only the version being deployed"
    (report,) = statements["report-to-codedeploy"]
    assert "deploymentgroup:${ServerlessDeploymentApplication}/*" in report["Resource"]["Fn::Sub"]


# ---------------------------------------------------------------- SnapStart
def test_snapstart_is_a_parameter_with_its_cost_stated(cfn):
    param = cfn["Parameters"]["EnableSnapStart"]
    assert param["AllowedValues"] == ["true", "false"] and param["Default"] == "true"
    description = param["Description"]
    # both charges, with their prices, and what they come to at the function's memory
    for words in ("caching", "restoration", "0.0000015046", "0.0001397998", "per version", "USD"):
        assert words in description, words
    assert cfn["Conditions"]["UseSnapStart"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    snap = props(cfn, "ClassifierFunction")["SnapStart"]
    assert snap == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    assert overrides("prod")["EnableSnapStart"] == "true"
    assert overrides("dev")["EnableSnapStart"] == "false"


def test_snapstart_cost_figure_matches_the_memory_default(cfn):
    """The description's monthly figure: caching price x GB x seconds in 30 days, at the memory default."""
    gb = int(cfn["Parameters"]["FunctionMemorySize"]["Default"]) / 1024
    monthly = 0.0000015046 * gb * 30 * 24 * 3600
    stated = float(re.search(r"about ([0-9.]+) USD a month", cfn["Parameters"]["EnableSnapStart"]["Description"])[1])
    assert stated == pytest.approx(monthly, abs=0.1)
    per_restore = float(
        re.search(r"about ([0-9.]+) USD per cold start", cfn["Parameters"]["EnableSnapStart"]["Description"])[1]
    )
    assert per_restore == pytest.approx(0.0001397998 * gb, abs=0.00001)


# ---------------------------------------------------------------- the account's logging role
def test_api_gateway_account_role_in_dev_only():
    """The account/region-wide CloudWatch role setting has one owner: dev, which the pipeline deploys first
    (.github/workflows/deploy.yml); prod in the same account reuses it. A prod in an account of its own sets it
    instead (samconfig.toml says so)."""
    owners = [env for env in ("dev", "prod") if overrides(env)["ConfigureApiGatewayAccount"] == "true"]
    assert owners == ["dev"]


# ---------------------------------------------------------------- custom domain
def test_custom_domain_is_optional_and_maps_the_stage(cfn):
    params = cfn["Parameters"]
    assert params["DomainName"]["Default"] == "" and params["CertificateArn"]["Default"] == ""
    domain_pattern = re.compile(params["DomainName"]["AllowedPattern"])
    for ok in ("", "api.example.com", "api-dev.hematovision.example.org"):
        assert domain_pattern.fullmatch(ok), ok
    for bad in ("https://api.example.com", "api.example.com/v1", "API.example.com", "localhost"):
        assert not domain_pattern.fullmatch(bad), bad
    assert re.fullmatch(
        params["CertificateArn"]["AllowedPattern"], "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f"
    )
    assert cfn["Conditions"]["HasCustomDomain"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]}
    rule = cfn["Rules"]["CustomDomainNeedsCertificate"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}

    domain = cfn["Resources"]["ApiDomainName"]
    assert domain["Type"] == "AWS::ApiGateway::DomainName" and domain["Condition"] == "HasCustomDomain"
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    assert domain["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    mapping = cfn["Resources"]["ApiBasePathMapping"]
    assert mapping["Type"] == "AWS::ApiGateway::BasePathMapping" and mapping["Condition"] == "HasCustomDomain"
    assert mapping["Properties"]["Stage"] == {"Ref": "Api.Stage"} and mapping["Properties"]["RestApiId"] == {
        "Ref": "Api"
    }
    # mapped at the root: https://{DomainName}/v1/classify, one version segment
    assert "BasePath" not in mapping["Properties"]
    for output in ("CustomDomainUrl", "CustomDomainTarget", "CustomDomainHostedZoneId"):
        assert cfn["Outputs"][output]["Condition"] == "HasCustomDomain", output


def test_translated_custom_domain_keeps_its_condition(out):
    for logical_id in ("ApiDomainName", "ApiBasePathMapping"):
        assert out[logical_id]["Condition"] == "HasCustomDomain", logical_id
    assert out["ApiBasePathMapping"]["Properties"]["Stage"] == {"Ref": "ApiStage"}
