"""Paths and the skip-or-fail rule shared by the export tests (a helper module, not conftest.py: test modules
import it by name, and several conftest.py files in one run would shadow each other as `conftest`)."""

import os
from pathlib import Path

from tests.ci import require  # noqa: F401  (the export tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
MODEL_DIR = ROOT / "functions" / "classifier" / "model"
EXPORT_PYTHON = Path(os.environ.get("HEMATOVISION_EXPORT_PYTHON", ROOT / ".venv-export" / "bin" / "python"))
