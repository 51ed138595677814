"""Paths and the skip-or-fail rule shared by the export tests (a helper module, not conftest.py: test modules
import it by name, and several conftest.py files in one run would shadow each other as `conftest`)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
MODEL_DIR = ROOT / "functions" / "classifier" / "model"
EXPORT_PYTHON = Path(os.environ.get("HEMATOVISION_EXPORT_PYTHON", ROOT / ".venv-export" / "bin" / "python"))


def require(condition: bool, reason: str) -> None:
    """Skip with a clear reason, except in CI (CI=true), where a missing prerequisite is a failure."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)
