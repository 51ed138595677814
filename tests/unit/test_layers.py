"""The serving package's import layers, as README's architecture section describes them.

errors, limits, config: neutral, import no other layer. models/: pydantic schemas, import only limits.
logic/: the use case, never HTTP (no handlers/, no models/). handlers/: everything. Checked on the source (AST),
so a lazy import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

import hematovision

PACKAGE = Path(hematovision.__file__).resolve().parent
NEUTRAL = {"hematovision", "hematovision.errors", "hematovision.limits", "hematovision.config"}
ALLOWED = {
    "errors": set(),
    "limits": set(),
    "config": {"hematovision"},  # hematovision.__file__ locates the bundled model
    "models": {"hematovision.limits"},
    "logic": NEUTRAL | {"hematovision.logic"},
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "hematovision" and node.level == 0:
            found |= {f"hematovision.{alias.name}" for alias in node.names}  # from hematovision import config
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "hematovision" or name.startswith("hematovision.")}


def layer_files(layer: str) -> list[Path]:
    single = PACKAGE / f"{layer}.py"
    return [single] if single.is_file() else sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer):
    allowed = ALLOWED[layer]
    for path in layer_files(layer):
        for module in imported_modules(path):
            assert module in allowed or any(module.startswith(prefix + ".") for prefix in allowed - NEUTRAL), (
                f"{path.relative_to(PACKAGE)} imports {module}, outside the {layer} layer's allowed imports"
            )
