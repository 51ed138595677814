"""Helpers of the infrastructure tests: paths, a CloudFormation-tolerant YAML loader, tool runners.

The AWS tools live in their own venv (.venv-tools, `make tools-venv`). Outside CI a missing tool
venv, model or Python 3.12 skips the tests that need them, with the reason; in CI (CI=true) a
missing tool venv or model fails them instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hematovision.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
INFRA = ROOT / "infra"
FUNCTION_DIR = ROOT / "functions" / "classifier"
MODEL_DIR = FUNCTION_DIR / "model"
TOOLS_BIN = ROOT / ".venv-tools" / "bin"
FUNCTION_ID = "ClassifierFunction"
HANDLER = "hematovision.handlers.api.lambda_handler"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

MIB = 2**20

SIZE_REPORTS: list[str] = []  # printed at the end of the session by conftest.py


# ---------------------------------------------------------------- infra/ scripts
# infra/python312.py and infra/package_size.py are standalone standard-library scripts (the Makefile runs
# them with any python3); the tests run them the same way rather than importing them.
def find_python312() -> str | None:
    """A working CPython 3.12 (infra/python312.py), or None."""
    proc = subprocess.run([sys.executable, str(INFRA / "python312.py")], capture_output=True, text=True, timeout=300)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def package_size(function_dir: Path, top: int = 15) -> tuple[dict, str]:
    """infra/package_size.py on a built function: its JSON report and its text table."""
    outputs = []
    for extra in (["--json"], []):
        proc = subprocess.run(
            [sys.executable, str(INFRA / "package_size.py"), str(function_dir), "--top", str(top), *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        # 1: over the budget, 2: over Lambda's limit - both are measurements; 3 (no directory) is not
        assert proc.returncode in (0, 1, 2), f"infra/package_size.py failed ({proc.returncode}): {proc.stderr}"
        outputs.append(proc.stdout)
    return json.loads(outputs[0]), outputs[1].rstrip("\n")


# ---------------------------------------------------------------- CloudFormation YAML
def load_cfn(path: Path) -> dict:
    """A template as data, read by the local server's loader (short-form intrinsics such as !Ref become their
    long form): one parser for both."""
    return load_yaml(path)


def all_template_paths() -> list[Path]:
    return [TEMPLATE, *sorted(INFRA.glob("*.yaml"))]


# ---------------------------------------------------------------- skipping rules
def skip_or_fail(reason: str) -> None:
    """Skip outside CI; fail in CI, where everything the suite needs must be installed."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: failing instead of skipping)")
    pytest.skip(reason)


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        skip_or_fail(f"{path.relative_to(ROOT)} missing - run `make tools-venv` (aws-sam-cli, cfn-lint)")
    return path


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env["SAM_CLI_TELEMETRY"] = "0"
    env.setdefault("SAM_CLI_DISABLE_VERSION_CHECK", "1")
    # never reach for real credentials or a profile from the tests
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run_tool(args: list[str], timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )


def model_card() -> dict | None:
    card = MODEL_DIR / "model_card.json"
    if not card.exists() or not (MODEL_DIR / "hematovision.onnx").exists():
        return None
    return json.loads(card.read_text(encoding="utf-8"))
