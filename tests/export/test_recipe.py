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
RECIPES = ROOT / "export" / "recipes"
# Model 1.2.0's recipe, kept beside the candidates: the model 2.0 candidates are stated as changes to it.
RECIPE_1_2_0 = RECIPES / "1.2.0.json"


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
    recipe = replace(Recipe.load(RECIPE_1_2_0), seed=7, version="1.3.0-rc1")
    recipe.save(tmp_path / "recipe.json")
    assert Recipe.load(tmp_path / "recipe.json") == recipe
    assert recipe.differences(Recipe.load(RECIPE_1_2_0)) == [
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


def test_the_1_2_0_recipe_file_has_no_model_2_fields_and_loads_with_their_defaults():
    data = json.loads(RECIPE_1_2_0.read_text())
    assert "crop" not in data and "crop_um" not in data and "hed_jitter" not in data["augmentation"]
    recipe = Recipe.load(RECIPE_1_2_0)
    assert recipe.crop == "frame" and not recipe.augmentation.stain_camera_on()
    assert "crop" not in recipe.card_training(4) and "stain_camera_augmentation" not in recipe.card_training(4)


@pytest.mark.parametrize("size", [160, 224])
def test_the_model_2_candidates_differ_from_1_2_0_only_in_crop_size_and_augmentation(size):
    candidate = Recipe.load(RECIPES / f"2.0.0-candidate-{size}.json")
    assert candidate.version == f"2.0.0-candidate-{size}" and candidate.input_size == size
    assert candidate.crop == "cell" and candidate.crop_um > 0 and candidate.augmentation.stain_camera_on()
    changed = {line.split(":")[0] for line in candidate.differences(Recipe.load(RECIPE_1_2_0))}
    assert changed <= {"version", "input_size", "augmentation", "crop", "crop_um"}
    training = candidate.card_training(3)
    assert (
        f"{candidate.crop_um:g} um" in training["crop"] and training["stain_camera_augmentation"]["hue_shift_degrees"]
    )


def test_a_cell_crop_recipe_needs_a_size_and_a_known_crop_mode():
    with pytest.raises(ValueError, match="crop_um"):
        replace(Recipe.load(RECIPE_FILE), crop="cell")
    with pytest.raises(ValueError, match="unknown crop"):
        replace(Recipe.load(RECIPE_FILE), crop="nucleus", crop_um=20.0)


def test_the_mixstyle_candidates_are_the_balanced_recipe_with_mixstyle_on():
    balanced = Recipe.load(RECIPES / "2.0.0-candidate-160-balanced.json")
    for name, seed in (("2.0.0-candidate-160-mixstyle", 20261126), ("2.0.0-candidate-160-mixstyle-s7", 7)):
        candidate = Recipe.load(RECIPES / f"{name}.json")
        assert candidate.version == name and candidate.seed == seed
        changed = {line.split(":")[0] for line in candidate.differences(balanced)}
        assert changed <= {"version", "seed", "mixstyle", "mixstyle_alpha"} and candidate.mixstyle == 0.5
        assert "Beta(0.1, 0.1)" in candidate.card_training(5)["mixstyle"]
    assert Recipe.load(RECIPE_1_2_0).mixstyle == 0.0 and "mixstyle" not in Recipe.load(RECIPE_1_2_0).card_training(4)
    with pytest.raises(ValueError, match="mixstyle"):
        replace(balanced, mixstyle=1.5)
    with pytest.raises(ValueError, match="mixstyle"):
        replace(balanced, mixstyle=0.5, mixstyle_alpha=0.0)


def test_a_step_average_recipe_starts_within_its_epochs():
    mirror = Recipe.load(RECIPES / "2.0.0-candidate-160-balanced-mirror-s19.json")
    averaged = replace(mirror, selection="step_average", average_from_epoch=2)
    assert "from the start of epoch 2 to the end" in averaged.card_training("average")["selection_rule"]
    with pytest.raises(ValueError, match="average_from_epoch"):
        replace(averaged, average_from_epoch=mirror.epochs + 1)


MIRROR = RECIPES / "2.0.0-candidate-160-balanced-mirror-s19.json"


def mirror_variant(name: str, seed: int) -> tuple[Recipe, set[str]]:
    """The candidate recipe `name`-s`seed` (named and seeded as its file says) and the fields where it differs from
    the mirror recipe."""
    candidate = Recipe.load(RECIPES / f"{name}-s{seed}.json")
    assert candidate.version == f"{name}-s{seed}" and candidate.seed == seed
    return candidate, {line.split(":")[0] for line in candidate.differences(Recipe.load(MIRROR))}


def test_the_distilled_candidates_are_the_mirror_recipe_taught_by_its_three_seeds():
    mirror = Recipe.load(MIRROR)
    for seed in (37, 41):
        candidate, changed = mirror_variant("2.0.0-candidate-160-distilled", seed)
        assert changed == {"version", "seed", "teachers", "distill_weight"}
        assert candidate.teachers == tuple(f"build/runs/v4-mirror-s{s}" for s in (19, 17, 31))
        assert (
            "0.2 x the label + 0.8 x the mean probabilities of 3 models" in candidate.card_training(3)["distillation"]
        )
        assert Recipe.from_dict(candidate.to_dict()) == candidate  # the teachers survive the run folder's JSON
    assert "distillation" not in mirror.card_training(3)
    with pytest.raises(ValueError, match="distill_weight"):
        replace(mirror, distill_weight=0.5)
    with pytest.raises(ValueError, match="distill_weight"):
        replace(mirror, teachers=("build/runs/x",))


def test_the_edge_cut_candidates_are_the_mirror_recipe_with_half_the_views_cut():
    mirror = Recipe.load(MIRROR)
    for seed in (43, 47):
        candidate, changed = mirror_variant("2.0.0-candidate-160-edgecut", seed)
        assert changed == {"version", "seed", "augmentation"}
        assert replace(candidate.augmentation, edge_cut=0.0) == mirror.augmentation
        assert "0.5 of the training views" in candidate.card_training(3)["edge_cut"]
    assert mirror.augmentation.edge_cut == 0.0 and "edge_cut" not in mirror.card_training(3)
    with pytest.raises(ValueError, match="edge_cut"):
        replace(Recipe.load(RECIPE_1_2_0), augmentation=replace(mirror.augmentation, edge_cut=0.5))
