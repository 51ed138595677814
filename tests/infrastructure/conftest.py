"""Fixtures of the infrastructure tests: the templates, the SAM/cfn-lint tools, one `sam build`.

Helpers live in infra_helpers.py (a unique module name: every tests/ folder may have a conftest).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.infrastructure.infra_helpers import (
    FUNCTION_ID,
    ROOT,
    SIZE_REPORTS,
    TEMPLATE,
    load_cfn,
    package_size,
    run_tool,
    tool,
)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def template() -> dict:
    return load_cfn(TEMPLATE)


@pytest.fixture(scope="session")
def nested() -> dict[str, dict]:
    """Nested templates by the root logical id of the AWS::Serverless::Application using them."""
    root = load_cfn(TEMPLATE)
    out = {}
    for logical_id, res in root["Resources"].items():
        if res["Type"] == "AWS::Serverless::Application":
            out[logical_id] = load_cfn(ROOT / res["Properties"]["Location"])
    return out


@pytest.fixture(scope="session")
def sam() -> Path:
    return tool("sam")


@pytest.fixture(scope="session")
def cfn_lint() -> Path:
    return tool("cfn-lint")


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory: pytest.TempPathFactory, sam: Path) -> Path:
    """`sam build` of the working tree into a temporary build dir, once per session."""
    build_dir = tmp_path_factory.mktemp("sam-build") / "build"
    proc = run_tool(
        [sam, "build", "--template-file", TEMPLATE, "--build-dir", build_dir, "--config-env", "default"],
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"sam build failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    function_dir = build_dir / FUNCTION_ID
    assert function_dir.is_dir(), f"sam build produced no {FUNCTION_ID}/: {sorted(os.listdir(build_dir))}"
    SIZE_REPORTS.append(package_size(function_dir, top=10)[1])
    return build_dir


@pytest.fixture(scope="session")
def built_function(sam_build: Path) -> Path:
    return sam_build / FUNCTION_ID


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if SIZE_REPORTS:
        terminalreporter.section("HematoVision Lambda package size (sam build)")
        for text in SIZE_REPORTS:
            terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def translated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml through the real SAM transform (tests/infrastructure/sam_translate.py)."""
    python = tool("python")
    out = tmp_path_factory.mktemp("sam-translate") / "template.json"
    proc = run_tool([python, Path(__file__).with_name("sam_translate.py"), TEMPLATE, out], timeout=120)
    assert proc.returncode == 0, f"SAM transform failed:\n{proc.stderr[-4000:]}"
    return out
