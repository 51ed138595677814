"""Training views of a crop == "cell" recipe (export/train.py): the cell crop of logic/cell_crop.py, then the view's
augmentation; no TensorFlow needed."""

import numpy as np
from export_helpers import ROOT, SHARED_DATA, require

from export.data import all_splits
from export.recipe import RECIPE_FILE, Recipe
from export.train import model_input_of, smoke_subset, training_view
from hematovision.logic.cell_crop import model_input
from hematovision.logic.localiser import locate
from hematovision.logic.preprocessing import decode_image

CANDIDATE = ROOT / "export" / "recipes" / "2.0.0-candidate-160.json"


def samples():
    require((SHARED_DATA / "bccd" / "TRAIN").is_dir(), f"shared data not found at {SHARED_DATA}")
    named = all_splits(SHARED_DATA)
    return smoke_subset(named["bccd_train"], 1) + smoke_subset(named["pbc_train"], 1)


def test_cell_views_are_the_crops_augmented_and_fixed_by_their_seed():
    recipe = Recipe.load(CANDIDATE)
    for sample in samples():
        view = training_view(sample, 123, recipe)
        assert view.shape == (160, 160, 3) and view.dtype == np.uint8
        assert np.array_equal(view, training_view(sample, 123, recipe))
        assert not np.array_equal(view, training_view(sample, 124, recipe))


def test_validation_inputs_are_the_serving_crops():
    recipe = Recipe.load(CANDIDATE)
    for sample in samples():
        image = decode_image(sample.path.read_bytes())
        expected = model_input(image, locate(image), recipe.crop_um, recipe.input_size)
        assert np.array_equal(model_input_of(sample, recipe), expected.pixels)


def test_frame_recipe_inputs_are_the_serving_preprocessing():
    from hematovision.logic.preprocessing import preprocess_file

    recipe = Recipe.load(RECIPE_FILE.parent / "recipes" / "1.2.0.json")
    sample = samples()[0]
    assert np.array_equal(model_input_of(sample, recipe), preprocess_file(sample.path, 224))


def test_an_edge_cut_view_is_padded_where_the_cut_photo_ends():
    from dataclasses import replace

    from export.train import cell_input

    recipe = Recipe.load(CANDIDATE)
    cut = replace(recipe, augmentation=replace(recipe.augmentation, edge_cut=1.0))
    for sample in samples():
        plain = cell_input(sample, recipe, 1.0, np.random.default_rng(5))
        views = [cell_input(sample, cut, 1.0, np.random.default_rng(seed)).pixels for seed in range(6)]
        assert np.array_equal(plain.pixels, cell_input(sample, recipe).pixels)  # edge_cut 0 draws nothing
        assert any(not np.array_equal(view, plain.pixels) for view in views)
        # a cut side leaves flat border colour along the crop's edge
        flat = [
            np.ptp(v[:, :3].reshape(-1, 3), axis=0).max() == 0
            or np.ptp(v[:3].reshape(-1, 3), axis=0).max() == 0
            or np.ptp(v[:, -3:].reshape(-1, 3), axis=0).max() == 0
            or np.ptp(v[-3:].reshape(-1, 3), axis=0).max() == 0
            for v in views
        ]
        assert any(flat)
