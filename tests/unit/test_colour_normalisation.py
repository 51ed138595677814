"""The "background" colour normalisation of a cell model's input (logic/cell_crop.normalise, the card's
input.normalise): a colour cast of the photo is divided out, training and serving apply it as the last step, and a
card asking for an unknown one is refused at load."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from export.card import crop_fields, loading_card
from export.data import Sample
from export.recipe import NORMALISATIONS as RECIPE_NORMALISATIONS
from export.recipe import Recipe
from export.train import model_input_of, training_view
from hematovision.logic import cell_crop
from hematovision.logic import classifier as classifier_module
from hematovision.logic.cell_crop import (
    BACKGROUND_PERCENTILE,
    BACKGROUND_TARGET,
    NORMALISATIONS,
    balance_background,
    model_input,
    normalise,
)
from hematovision.logic.classifier import Classifier
from hematovision.logic.inference import Model, ModelLoadError
from hematovision.logic.localiser import LOCALISER_VERSION, Localisation
from hematovision.logic.preprocessing import decode_image
from tests import fakes
from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CANDIDATE = ROOT / "export" / "recipes" / "2.0.0-candidate-160.json"
BOX = (130, 90, 190, 150)
YELLOW_CAST = (1.05, 1.0, 0.72)  # the robustness table's yellow cast (issue #18)


def smear_like(seed: int = 0) -> np.ndarray:
    """A pale background (plasma) with darker discs (red cells) and one purple blob (a white cell), uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    image = np.empty((160, 160, 3), np.float32)
    image[:] = (205, 195, 185)
    yy, xx = np.mgrid[:160, :160]
    for _ in range(12):
        cy, cx = rng.uniform(0, 160, 2)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 15**2] = (190, 120, 120)
    image[(yy - 80) ** 2 + (xx - 80) ** 2 < 25**2] = (120, 70, 150)
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def cast(pixels: np.ndarray, gains) -> np.ndarray:
    return np.clip(pixels.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)


def test_the_background_becomes_the_target():
    balanced = balance_background(smear_like())
    level = np.percentile(balanced.reshape(-1, 3).astype(np.float32), BACKGROUND_PERCENTILE, axis=0)
    assert np.allclose(level, BACKGROUND_TARGET, atol=1.5), level


@pytest.mark.parametrize("gains", [YELLOW_CAST, (0.8, 0.92, 1.08), (0.75, 0.75, 0.75)])
def test_a_colour_cast_of_the_photo_is_divided_out(gains):
    plain, tinted = smear_like(), cast(smear_like(), gains)
    before = np.abs(plain.astype(int) - tinted.astype(int)).mean()
    after = np.abs(balance_background(plain).astype(int) - balance_background(tinted).astype(int))
    assert before > 10 and after.mean() < 1.5 and np.percentile(after, 99) <= 4, (before, after.mean())


def test_a_dark_input_is_not_stretched_into_noise():
    dark = np.full((32, 32, 3), 10, np.uint8)
    assert balance_background(dark).max() <= 10 * cell_crop.MAX_BACKGROUND_GAIN + 1


def test_none_is_the_identity_and_an_unknown_normalisation_is_an_error():
    pixels = smear_like()
    assert normalise(pixels, "none") is pixels
    assert np.array_equal(normalise(pixels, "background"), balance_background(pixels))
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(pixels, "grey_world")


def test_the_recipe_and_the_serving_code_know_the_same_normalisations():
    assert RECIPE_NORMALISATIONS == NORMALISATIONS


# ---------------------------------------------------------------- the card contract
def card_with(fake_model_dir, **input_fields) -> dict:
    card = json.loads((fake_model_dir / "model_card.json").read_text())
    card["input"].update(crop="cell", crop_um=28.0, **input_fields)
    card["localiser"] = {"version": LOCALISER_VERSION}
    return card


def test_a_card_without_normalise_is_served_as_before(fake_model_dir):
    assert Model(fake_model_dir).normalise == "none"
    assert Model(fake_model_dir, card=card_with(fake_model_dir)).normalise == "none"


def test_a_card_with_an_unknown_normalise_is_refused(fake_model_dir):
    with pytest.raises(ModelLoadError, match="normalise 'grey_world'"):
        Model(fake_model_dir, card=card_with(fake_model_dir, normalise="grey_world"))


def test_the_recipe_writes_normalise_into_the_card():
    recipe = replace(Recipe.load(CANDIDATE), normalise="background")
    input_fields, _ = crop_fields(recipe)
    assert input_fields["normalise"] == "background"
    assert loading_card(recipe)["input"]["normalise"] == "background"
    assert "normalise" not in crop_fields(Recipe.load(CANDIDATE))[0]  # "none" is the absent default
    with pytest.raises(ValueError, match="cell crops"):
        replace(Recipe.load(ROOT / "export" / "recipe.json"), normalise="background")


@pytest.fixture
def balanced_classifier(fake_model_dir, tmp_path, monkeypatch):
    directory = tmp_path / "model"
    directory.mkdir()
    shutil.copy(fake_model_dir / "hematovision.onnx", directory / "hematovision.onnx")
    (directory / "model_card.json").write_text(json.dumps(card_with(fake_model_dir, normalise="background")))
    monkeypatch.setattr(
        classifier_module,
        "locate",
        lambda image: Localisation(boxes=[BOX], scores=[0.9], px_per_um=4.0, ruler="red_cells"),
    )
    return Classifier(Model(directory))


def test_the_served_input_is_the_balanced_crop(balanced_classifier, monkeypatch):
    seen = fakes.record_model_inputs(balanced_classifier.model, monkeypatch)
    data = fakes.synthetic_cell(320, 240)
    item = balanced_classifier.classify([data]).items[0]
    assert item.ok and item.crop == "cell"
    where = Localisation(boxes=[BOX], px_per_um=4.0, ruler="red_cells")
    crop = model_input(decode_image(data), where, 28.0, balanced_classifier.model.input_size).pixels
    assert np.array_equal(seen[0][0], balance_background(crop))
    assert not np.array_equal(seen[0][0], crop)


def test_training_and_validation_inputs_are_balanced_last(monkeypatch):
    """Training: crop -> augmentation -> normalise; validation: crop -> normalise (export/train.py), so the
    augmented colour casts are divided out as serving divides out a photo's."""
    path = SHARED / "pbc" / "EOSINOPHIL"
    require(path.is_dir(), f"shared data not found at {path}")
    sample = Sample(sorted(path.iterdir())[0], 0, "pbc", "train")
    recipe = replace(Recipe.load(CANDIDATE), normalise="background")
    plain = replace(recipe, normalise="none")
    assert np.array_equal(model_input_of(sample, recipe), balance_background(model_input_of(sample, plain)))
    assert np.array_equal(training_view(sample, 11, recipe), balance_background(training_view(sample, 11, plain)))
