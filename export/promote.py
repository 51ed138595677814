"""`python -m export promote RUN`: a finished run becomes the shipped model.

The only step that writes export/artifacts, functions/classifier/model and the model card in docs/. It refuses a
smoke run, an unfinished run, and a run whose recorded recipe is not the committed one (export/recipe.json at
HEAD): what ships is always reproducible from the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from export.recipe import REPO, RUN_RECIPE_NAME, Recipe, committed_recipe

ARTIFACTS = REPO / "export" / "artifacts"
MODEL_DIR = REPO / "functions" / "classifier" / "model"
DOCS = REPO / "docs"
# A run folder: the training outputs at its top, the converted model and its card in model/, the card's
# markdown and figures in docs/.
RUN_MODEL = "model"
RUN_DOCS = "docs"
TRAINING_FILES = (RUN_RECIPE_NAME, "train_report.json", "classifier.keras", "centroids.npy", "convert_report.json")
MODEL_FILES = ("hematovision.onnx", "model_card.json")
DOCS_FILES = ("model-card.md", "figures/confusion-matrices.png", "figures/training-curve.png")


class PromotionRefused(Exception):
    pass


def refusal_reasons(run: Path, committed: Recipe) -> list[str]:
    """Why `run` may not ship; empty when it may."""
    missing = [
        str(path)
        for path in (
            *(run / name for name in TRAINING_FILES),
            *(run / RUN_MODEL / name for name in MODEL_FILES),
            *(run / RUN_DOCS / name for name in DOCS_FILES),
        )
        if not path.is_file()
    ]
    if missing:
        return [f"the run is not finished (`python -m export all` writes them): missing {', '.join(missing)}"]
    reasons = []
    if json.loads((run / "train_report.json").read_text())["smoke"]:
        reasons.append("it is a smoke run")
    differences = Recipe.load(run / RUN_RECIPE_NAME).differences(committed)
    if differences:
        reasons.append(
            "its recipe is not the committed one (export/recipe.json at HEAD; commit a new recipe with its new "
            f"version first): {'; '.join(differences)}"
        )
    card = json.loads((run / RUN_MODEL / "model_card.json").read_text())
    if not card["parity"]["passed"]:
        reasons.append("its ONNX model failed the parity check against the Keras model")
    return reasons


def promote(
    run: Path,
    committed: Recipe | None = None,
    artifacts: Path = ARTIFACTS,
    model_dir: Path = MODEL_DIR,
    docs: Path = DOCS,
) -> list[Path]:
    """Copy the run's files over the shipped ones; returns the paths written."""
    run = Path(run)
    reasons = refusal_reasons(run, committed_recipe() if committed is None else committed)
    if reasons:
        raise PromotionRefused(f"{run} is not promoted: " + "; ".join(reasons))
    copies = [(run / name, artifacts / name) for name in TRAINING_FILES]
    copies += [(run / RUN_MODEL / name, model_dir / name) for name in MODEL_FILES]
    copies += [(run / RUN_DOCS / name, docs / name) for name in DOCS_FILES]
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return [target for _, target in copies]
