"""Outlier exposure (export/outliers.py, export/train.outlier_view / outlier_seeds / fit): the synthetic non-blood
images are fixed by their seeds, of every family, and none is blood-like in the way the evaluation's set is (its
families are not among them); their views go through the recipe's input path; a recipe without them trains as
before."""

import json
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from export_helpers import EXPORT_PYTHON, ROOT, require

from export import outliers, train
from export.recipe import Recipe

RECIPE = "export/recipes/2.0.0-candidate-160-gentle-outliers-s67.json"


def test_an_outlier_image_is_fixed_by_its_seed_and_each_family_occurs():
    first, again, other = outliers.outlier_image(5), outliers.outlier_image(5), outliers.outlier_image(6)
    assert first.dtype == np.uint8 and first.shape == (outliers.SIZE[1], outliers.SIZE[0], 3)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    drawn = {outliers.FAMILIES[int(np.random.default_rng(seed).integers(len(outliers.FAMILIES)))] for seed in range(30)}
    assert drawn == set(outliers.FAMILIES)


# words in an evaluation image's name that make it one of a trained family
FAMILY_WORDS = {"shapes": ("shape",), "stripes": ("stripe", "checker"), "text": ("text", "page")}


def test_the_evaluation_non_blood_images_of_trained_families_are_the_named_ones():
    from export.evaluate import non_blood_images

    assert set(FAMILY_WORDS) == set(outliers.FAMILIES)
    names = [name for name, _ in non_blood_images()]
    of_trained = {name for name in names for words in FAMILY_WORDS.values() if any(w in name for w in words)}
    assert of_trained == set(outliers.EVALUATION_IMAGES_OF_TRAINED_FAMILIES)
    assert len(names) - len(of_trained) == 45


def test_outlier_views_are_model_inputs_of_the_recipe():
    recipe = Recipe.load(train.REPO / RECIPE)
    seeds = train.outlier_seeds(recipe, smoke=False)
    assert len(seeds) == recipe.outlier_views == 3000 and len(set(seeds)) == len(seeds)
    assert len(train.outlier_seeds(recipe, smoke=True)) == train.SMOKE_OUTLIER_VIEWS
    assert train.outlier_seeds(replace(recipe, outlier_views=0), smoke=False) == []
    view = train.outlier_view(seeds[0], recipe)
    assert view.shape == (recipe.input_size, recipe.input_size, 3) and view.dtype == np.uint8
    assert np.array_equal(view, train.outlier_view(seeds[0], recipe))


def test_a_negative_number_of_outlier_views_is_refused():
    recipe = Recipe.load(train.REPO / RECIPE)
    with pytest.raises(ValueError, match="outlier_views"):
        replace(recipe, outlier_views=-1)
    assert "outlier_exposure" in recipe.card_training(4)


def test_the_outlier_weight_is_the_recipe_s_and_must_be_positive():
    recipe = Recipe.load(train.REPO / RECIPE)
    assert recipe.outlier_weight == 0.2
    assert "at 0.2 x a blood view's mean weight" in recipe.card_training(4)["outlier_exposure"]
    with pytest.raises(ValueError, match="outlier_weight"):
        replace(recipe, outlier_weight=0.0)


FIT_SCRIPT = r"""
import json
import time
from dataclasses import replace
from types import SimpleNamespace

import keras
import numpy as np

from export import train
from export.recipe import RECIPE_FILE, Recipe

rng = np.random.default_rng(0)
y = rng.integers(0, 4, 128)
x = rng.normal(0, 1, (128, 3, 3, 8))
x[np.arange(128), :, :, y] += 3.0  # each class lights its own channel
outliers, held_out = rng.normal(0, 1, (2, 64, 3, 3, 8))
outliers[..., 6:] += 3.0  # channels no class uses
held_out[..., 6:] += 3.0
recipe = replace(Recipe.load(RECIPE_FILE), epochs=4, batch_size=32, peak_lr=0.05, selection="best_val_macro_f1",
                 outlier_weight=1.0)


def trained(x_outlier):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3, 3, 8))
    head = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)))
    cache = SimpleNamespace(x_train=x.astype("float16"), y_train=y, x_val=x[:40].astype("float32"), y_val=y[:40],
                            teacher=None, x_outlier=x_outlier.astype("float16"))
    history, _ = train.fit(head, recipe, cache, time.time(), verbose=0)
    return {"outlier_confidence": float(head.predict(held_out, verbose=0).max(axis=1).mean()),
            "val_accuracy": history[-1]["val_accuracy"]}


print(json.dumps({"without": trained(outliers[:0]), "with": trained(outliers)}))
"""


def test_fit_trains_outlier_views_towards_uniform_and_keeps_the_classes():
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    result = subprocess.run(
        [str(EXPORT_PYTHON), "-c", FIT_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["with"]["val_accuracy"] == figures["without"]["val_accuracy"] == 1.0
    # inputs like the outlier views (not the same ones) get a flatter answer than without them
    assert figures["with"]["outlier_confidence"] < figures["without"]["outlier_confidence"] - 0.1
