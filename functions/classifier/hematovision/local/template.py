"""Reads what the local gateway needs from the SAM template, so local and deployed behaviour match.

BinaryMediaTypes, the routes with their per-route ApiKeyRequired, CORS, gateway responses, stage
name, and the function's handler, timeout and environment. CloudFormation short-form tags (!Ref,
!Sub, !GetAtt, ...) are loaded as their long forms; simple intrinsics are resolved with parameter
defaults, anything else is left unresolved.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HANDLER = "hematovision.handlers.api.lambda_handler"
PSEUDO_PARAMETERS = {
    "AWS::StackName": "hematovision-local",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


class TemplateError(ValueError):
    pass


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic tags."""


def _construct_intrinsic(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_yaml(path: Path | str) -> dict:
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


class Resolver:
    """Resolves Ref / Fn::Sub / Fn::If / Fn::Join against parameter defaults (and pseudo parameters)."""

    UNRESOLVED = object()

    def __init__(self, template: dict, overrides: dict[str, Any] | None = None):
        self.values: dict[str, Any] = dict(PSEUDO_PARAMETERS)
        for name, spec in (template.get("Parameters") or {}).items():
            if isinstance(spec, dict) and "Default" in spec:
                self.values[name] = spec["Default"]
        self.values.update(overrides or {})

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.values.get(arg, self.UNRESOLVED)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
                missing = []

                def replace(match: re.Match) -> str:
                    name = match.group(1)
                    if name.startswith("!"):
                        return "${" + name[1:] + "}"
                    resolved = self(extra[name]) if name in extra else self.values.get(name, self.UNRESOLVED)
                    if resolved is self.UNRESOLVED or resolved is None:
                        missing.append(name)
                        return ""
                    return str(resolved)

                result = re.sub(r"\$\{([^}]+)\}", replace, text)
                return self.UNRESOLVED if missing else result
            if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
                parts = [self(p) for p in arg[1]] if isinstance(arg[1], list) else [self.UNRESOLVED]
                if any(p is self.UNRESOLVED for p in parts):
                    return self.UNRESOLVED
                return str(arg[0]).join(str(p) for p in parts if p is not None)
            if key.startswith("Fn::") or key == "Condition":
                return self.UNRESOLVED
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    api_key_required: bool
    name: str = ""

    @property
    def pattern(self) -> re.Pattern:
        regex = ""
        for segment in self.path.strip("/").split("/"):
            if not segment:
                continue
            if segment.startswith("{") and segment.endswith("+}"):
                name = re.sub(r"\W", "_", segment[1:-2])
                regex += rf"/(?P<{name}>.+)"
            elif segment.startswith("{") and segment.endswith("}"):
                name = re.sub(r"\W", "_", segment[1:-1])
                regex += rf"/(?P<{name}>[^/]+)"
            else:
                regex += "/" + re.escape(segment)
        return re.compile("^" + (regex or "/") + "/?$" if regex else "^/$")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()


@dataclass
class GatewayResponse:
    status: int | None
    headers: dict[str, str]
    json_template: str | None


@dataclass
class ApiConfig:
    routes: list[Route]
    binary_media_types: list[str]
    stage: str = "local"
    handler: str = DEFAULT_HANDLER
    function_timeout: int = 30
    function_memory: int = 1024
    environment: dict[str, str] = field(default_factory=dict)
    cors: dict[str, str] | None = None
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    source: str = "built-in defaults"

    def is_binary(self, content_type: str | None) -> bool:
        """API Gateway's test: does the request Content-Type match one of the binary media types?"""
        kind = (content_type or "").split(";", 1)[0].strip().lower()
        if not kind:
            return False
        return any(fnmatch.fnmatchcase(kind, pattern.lower()) for pattern in self.binary_media_types)

    def find_route(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, path_exists_with_other_method)."""
        path_known = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            path_known = True
            if route.method in (method.upper(), "ANY"):
                return route, params, True
        return None, {}, path_known


def _as_bool(value: Any, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return default


def _unquote(value: Any) -> str:
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


def load_api_config(path: Path | str, handler: str = DEFAULT_HANDLER) -> ApiConfig:
    template = load_yaml(path)
    resolve = Resolver(template)
    resources: dict = template.get("Resources") or {}
    globals_ = template.get("Globals") or {}
    functions = {
        n: r for n, r in resources.items() if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Function"
    }
    if not functions:
        raise TemplateError(f"{path} defines no AWS::Serverless::Function")
    name, function = next(
        ((n, r) for n, r in functions.items() if (r.get("Properties") or {}).get("Handler") == handler),
        next(iter(functions.items())),
    )
    props = resolve(function.get("Properties") or {})
    function_globals = resolve(globals_.get("Function") or {})

    api_globals = globals_.get("Api") or {}
    apis = {n: r for n, r in resources.items() if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Api"}
    routes: list[Route] = []
    api_name = None
    for event_name, event in (props.get("Events") or {}).items():
        if not isinstance(event, dict) or event.get("Type") != "Api":
            continue
        event_props = event.get("Properties") or {}
        rest_api = (
            (function.get("Properties") or {})
            .get("Events", {})
            .get(event_name, {})
            .get("Properties", {})
            .get("RestApiId")
        )
        if isinstance(rest_api, dict) and "Ref" in rest_api:
            api_name = rest_api["Ref"]
        api_auth = ((apis.get(api_name) or {}).get("Properties") or {}).get("Auth") or api_globals.get("Auth") or {}
        default_required = _as_bool(resolve(api_auth.get("ApiKeyRequired")), False)
        auth = event_props.get("Auth") or {}
        required = (
            _as_bool(auth.get("ApiKeyRequired"), default_required) if "ApiKeyRequired" in auth else default_required
        )
        routes.append(
            Route(
                method=str(event_props.get("Method", "ANY")).upper(),
                path=str(event_props.get("Path", "/")),
                api_key_required=required,
                name=event_name,
            )
        )
    if not routes:
        raise TemplateError(f"{path}: function {name} has no Api events")

    api_resource = apis.get(api_name) if api_name else (next(iter(apis.values())) if apis else None)
    api_props = resolve((api_resource or {}).get("Properties") or {})
    merged_api = {**resolve(api_globals), **api_props}
    binary = [str(t).replace("~1", "/") for t in (merged_api.get("BinaryMediaTypes") or []) if isinstance(t, str)]
    stage = merged_api.get("StageName")
    cors = merged_api.get("Cors")
    if isinstance(cors, str):
        cors = {"AllowOrigin": cors}
    cors_config = None
    if isinstance(cors, dict):
        cors_config = {
            k: _unquote(v) for k, v in cors.items() if isinstance(v, (str, int)) and v is not Resolver.UNRESOLVED
        }

    responses: dict[str, GatewayResponse] = {}
    for response_type, spec in (merged_api.get("GatewayResponses") or {}).items():
        if not isinstance(spec, dict):
            continue
        headers = (spec.get("ResponseParameters") or {}).get("Headers") or {}
        templates = spec.get("ResponseTemplates") or {}
        status = spec.get("StatusCode")
        responses[str(response_type)] = GatewayResponse(
            status=int(status) if isinstance(status, (int, str)) and str(status).isdigit() else None,
            headers={k: _unquote(v) for k, v in headers.items() if isinstance(v, str)},
            json_template=templates.get("application/json")
            if isinstance(templates.get("application/json"), str)
            else None,
        )

    env = {}
    for key, value in {
        **((function_globals.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }.items():
        if value is Resolver.UNRESOLVED or value is None or isinstance(value, (dict, list)):
            continue
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)

    def number(value: Any, default: int) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    return ApiConfig(
        routes=routes,
        binary_media_types=binary,
        stage=str(stage) if isinstance(stage, (str, int)) and stage is not Resolver.UNRESOLVED else "local",
        handler=str(props.get("Handler") or handler),
        function_timeout=number(props.get("Timeout", function_globals.get("Timeout")), 3),
        function_memory=number(props.get("MemorySize", function_globals.get("MemorySize")), 128),
        environment=env,
        cors=cors_config,
        gateway_responses=responses,
        source=str(path),
    )


def default_template_path() -> Path | None:
    """template.yaml at the repository root (editable install), or in the current directory."""
    here = Path(__file__).resolve()
    candidates = [here.parents[4] / "template.yaml" if len(here.parents) > 4 else None, Path.cwd() / "template.yaml"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    return None
