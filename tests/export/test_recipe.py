"""The recipe is data (export/recipe.py), the shipped model was made with the committed one, and only a finished
run of the committed recipe can be promoted (export/promote.py)."""

import json
from dataclasses import replace

import pytest
from export_helpers import MODEL_DIR, ROOT

from export.promote import (
    DOCS_FILES,
    MODEL_FILES,
    RUN_DOCS,
    RUN_MODEL,
    TRAINING_FILES,
    PromotionRefused,
    promote,
)
from export.recipe import RECIPE_FILE, RUN_RECIPE_NAME, Recipe, committed_recipe

ARTIFACTS = ROOT / "export" / "artifacts"


def test_the_shipped_model_was_trained_with_the_committed_recipe():
    committed = committed_recipe()
    assert committed == Recipe.load(RECIPE_FILE) == Recipe.load(ARTIFACTS / RUN_RECIPE_NAME)
    card = json.loads((MODEL_DIR / "model_card.json").read_text())
    report = json.loads((ARTIFACTS / "train_report.json").read_text())
    assert card["version"] == committed.version
    assert not report["smoke"] and len(report["history"]) == committed.epochs
    for key, value in committed.card_training(report["selected_epoch"]).items():
        assert card["training"][key] == value, key


def test_a_recipe_round_trips_through_its_file(tmp_path):
    recipe = replace(Recipe.load(RECIPE_FILE), seed=7, version="1.3.0-rc1")
    recipe.save(tmp_path / "recipe.json")
    assert Recipe.load(tmp_path / "recipe.json") == recipe
    assert recipe.differences(Recipe.load(RECIPE_FILE)) == [
        "version: '1.3.0-rc1' != '1.2.0'",
        "seed: 7 != 20261126",
    ]


def test_a_recipe_file_must_name_every_field_and_nothing_else(tmp_path):
    data = json.loads(RECIPE_FILE.read_text())
    with pytest.raises(TypeError):
        Recipe.from_dict({**data, "mixup": 0.2})
    del data["dropout"]
    with pytest.raises(TypeError):
        Recipe.from_dict(data)


def test_the_selection_rule_is_a_known_one():
    with pytest.raises(ValueError, match="selection rule"):
        replace(Recipe.load(RECIPE_FILE), selection="mean of the last epochs")


def fake_run(folder, recipe: Recipe, smoke: bool = False):
    """A finished run's files, with stand-in contents where promote does not read them."""
    for relative in (
        *TRAINING_FILES,
        *(f"{RUN_MODEL}/{n}" for n in MODEL_FILES),
        *(f"{RUN_DOCS}/{n}" for n in DOCS_FILES),
    ):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(f"stand-in {relative}")
    recipe.save(folder / RUN_RECIPE_NAME)
    (folder / "train_report.json").write_text(json.dumps({"smoke": smoke}))
    (folder / RUN_MODEL / "model_card.json").write_text(json.dumps({"parity": {"passed": True}}))
    return folder


@pytest.fixture
def targets(tmp_path):
    names = ("artifacts", "model", "docs")
    for name in names:
        (tmp_path / name).mkdir()
    return {name: tmp_path / name for name in names}


def promote_into(run, targets):
    return promote(
        run, committed_recipe(), artifacts=targets["artifacts"], model_dir=targets["model"], docs=targets["docs"]
    )


def written(targets) -> list:
    return sorted(p for folder in targets.values() for p in folder.rglob("*") if p.is_file())


def test_promote_ships_a_finished_run_of_the_committed_recipe(tmp_path, targets):
    run = fake_run(tmp_path / "run", committed_recipe())
    promote_into(run, targets)
    assert (targets["model"] / "hematovision.onnx").read_text() == "stand-in model/hematovision.onnx"
    assert (targets["artifacts"] / "classifier.keras").read_text() == "stand-in classifier.keras"
    assert (targets["docs"] / "figures" / "training-curve.png").is_file()
    assert Recipe.load(targets["artifacts"] / RUN_RECIPE_NAME) == committed_recipe()
    assert len(written(targets)) == len(TRAINING_FILES) + len(MODEL_FILES) + len(DOCS_FILES)


def test_promote_refuses_a_run_of_another_recipe(tmp_path, targets):
    run = fake_run(tmp_path / "run", replace(committed_recipe(), peak_lr=1e-4))
    with pytest.raises(PromotionRefused, match="recipe is not the committed one.*peak_lr: 0.0001 != 0.0003"):
        promote_into(run, targets)
    assert written(targets) == []


def test_promote_refuses_a_smoke_run(tmp_path, targets):
    run = fake_run(tmp_path / "run", committed_recipe(), smoke=True)
    with pytest.raises(PromotionRefused, match="smoke run"):
        promote_into(run, targets)
    assert written(targets) == []


def test_promote_refuses_an_unfinished_run(tmp_path, targets):
    run = fake_run(tmp_path / "run", committed_recipe())
    (run / RUN_MODEL / "hematovision.onnx").unlink()
    with pytest.raises(PromotionRefused, match="not finished.*hematovision.onnx"):
        promote_into(run, targets)
    assert written(targets) == []
