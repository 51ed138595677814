"""Training-view augmentations (export/augment.py): orientation, zoom-out and colour jitter."""

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from export.augment import colour_jitter, dihedral, hed_jitter, random_view, stain_camera, zoom_out
from export.recipe import REPO, Recipe

# Model 1.2.0's recipe, kept beside the candidates when export/recipe.json moves on: its views stay reproducible.
RECIPE_1_2_0 = REPO / "export" / "recipes" / "1.2.0.json"
AUGMENTATION = Recipe.load(RECIPE_1_2_0).augmentation
# sha256 of random_view(slide(), default_rng(seed), AUGMENTATION, p) for seeds 0-39 and p in (0, 0.5), as 1.2.0's
# recipe drew them: the training views of model 1.2.0.
RECIPE_1_2_0_VIEWS = "73630a696f5b46f0b19f5f0027298d07467995b118ad9850c06b36a281a788d4"


def slide(seed: int = 0) -> np.ndarray:
    """A 224x224 RGB frame: a smooth pinkish background with a dark purple disc (a cell) off-centre."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:224, :224]
    image = np.empty((224, 224, 3), np.float32)
    image[...] = (220, 190, 185)
    image += rng.normal(0, 6, image.shape)
    cell = (y - 80) ** 2 + (x - 130) ** 2 < 40**2
    image[cell] = (110, 60, 150)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_dihedral_gives_the_eight_distinct_orientations():
    image = slide()
    views = {dihedral(image, k).tobytes() for k in range(8)}
    assert len(views) == 8
    assert np.array_equal(dihedral(image, 0), image)


def test_zoom_out_shrinks_the_frame_onto_its_background_colour():
    image = slide()
    out = zoom_out(image, np.random.default_rng(3), AUGMENTATION)
    assert out.shape == image.shape and out.dtype == np.uint8
    dark_before = (image.sum(axis=2) < 500).mean()
    dark_after = (out.sum(axis=2) < 500).mean()
    assert 0.2 * dark_before < dark_after < 0.8 * dark_before  # the cell is smaller, not gone


def test_colour_jitter_stays_mild():
    image = slide()
    out = colour_jitter(image, np.random.default_rng(5), AUGMENTATION)
    assert out.dtype == np.uint8 and not np.array_equal(out, image)
    assert np.abs(out.astype(int) - image).mean() < 40


@pytest.mark.parametrize("probability", [0.0, 0.5])
def test_random_view_is_reproducible_from_its_seed(probability):
    image = slide()
    first = random_view(image, np.random.default_rng(11), AUGMENTATION, probability)
    again = random_view(image, np.random.default_rng(11), AUGMENTATION, probability)
    assert np.array_equal(first, again)


def test_the_1_2_0_recipe_draws_its_models_views():
    image = slide()
    digest = hashlib.sha256()
    for seed in range(40):
        for probability in (0.0, 0.5):
            digest.update(random_view(image, np.random.default_rng(seed), AUGMENTATION, probability).tobytes())
    assert digest.hexdigest() == RECIPE_1_2_0_VIEWS


MODEL_2_FIELDS = (
    "hed_jitter",
    "colour_cast",
    "hue_shift",
    "desaturation",
    "blur_radius",
    "jpeg_quality",
    "greyscale",
)


def test_the_model_2_augmentations_are_off_in_the_1_2_0_recipe():
    assert not AUGMENTATION.stain_camera_on() and AUGMENTATION.crop_scale_jitter == 0
    recipe = Recipe.load(RECIPE_1_2_0)
    assert recipe.crop == "frame"


@pytest.mark.parametrize(
    "field, strength", [("hed_jitter", 0.2), ("colour_cast", 0.3), ("hue_shift", 15.0), ("desaturation", 0.5)]
)
def test_each_stain_augmentation_changes_colours_and_keeps_the_frame(field, strength):
    image = slide()
    augmentation = replace(AUGMENTATION, **{field: strength})
    out = stain_camera(image, np.random.default_rng(2), augmentation)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    assert np.array_equal(out, stain_camera(image, np.random.default_rng(2), augmentation))  # fixed by the seed
    # colours move, the cell stays where it is
    dark = image.sum(axis=2) < 450
    assert (out[dark].astype(int).sum(axis=1) < out[~dark].astype(int).sum(axis=1).mean()).mean() > 0.95


def test_blur_and_jpeg_act_on_about_half_of_the_views():
    image = slide()
    augmentation = replace(AUGMENTATION, blur_radius=1.5, jpeg_quality=40)
    changed = [
        not np.array_equal(stain_camera(image, np.random.default_rng(seed), augmentation), image) for seed in range(40)
    ]
    assert 0.5 < np.mean(changed) < 0.95  # each on half of the views: ~3/4 get at least one


def test_greyscale_turns_about_its_share_of_the_views_grey():
    image = slide()
    augmentation = replace(AUGMENTATION, greyscale=0.3)
    views = [stain_camera(image, np.random.default_rng(seed), augmentation) for seed in range(200)]
    grey = [bool((view == view[:, :, :1]).all()) for view in views]
    assert 0.2 < np.mean(grey) < 0.4
    # a grey view is the luma of the colour view: the cell stays darker than the background
    view = views[grey.index(True)]
    dark = image.sum(axis=2) < 450
    assert view[dark, 0].mean() < view[~dark, 0].mean() - 50
    assert all(np.array_equal(v, image) for v, g in zip(views, grey, strict=True) if not g)


def test_hed_jitter_at_zero_draw_is_the_identity_up_to_rounding():
    image = slide()

    class Zero:
        @staticmethod
        def uniform(low, high, size=None):
            return np.zeros(size) if size else 0.0

    assert np.abs(hed_jitter(image, Zero(), 0.2).astype(int) - image).max() <= 1


def test_a_view_with_stain_augmentation_starts_as_the_1_2_0_view():
    """The stain/camera step comes after the 1.2.0 draws: turning it on does not change the earlier ones."""
    image = slide()
    plain = random_view(image, np.random.default_rng(4), AUGMENTATION, 0.5)
    augmentation = replace(AUGMENTATION, colour_cast=0.3)
    rng = np.random.default_rng(4)
    stained = random_view(image, rng, augmentation, 0.5)
    again = np.random.default_rng(4)
    assert np.array_equal(plain, random_view(image, again, AUGMENTATION, 0.5))
    assert np.array_equal(stained, stain_camera(plain, again, augmentation))


def test_edge_cut_moves_the_photo_edges_in_between_the_cell_and_the_crop_edge():
    from export.augment import edge_cut

    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    box, side = (150, 100, 210, 170), 120.0  # the crop spans x 120-240, y 75-195
    unchanged, same_box = edge_cut(image, box, side, np.random.default_rng(1), 0.0)
    assert unchanged.shape == image.shape and same_box == box
    moved_sides = 0
    for seed in range(50):
        cut, moved = edge_cut(image, box, side, np.random.default_rng(seed), 0.5)
        height, width = cut.shape[:2]
        assert moved[0] >= 0 and moved[1] >= 0 and moved[2] <= width and moved[3] <= height  # the cell stays whole
        assert moved[2] - moved[0] == 60 and moved[3] - moved[1] == 70
        x0, y0 = box[0] - moved[0], box[1] - moved[1]
        assert np.array_equal(cut, image[y0 : y0 + height, x0 : x0 + width])  # a window of the photo, not resampled
        assert x0 in range(0, 1) or 120 <= x0 <= 150
        assert y0 in range(0, 1) or 75 <= y0 <= 100
        assert x0 + width == 400 or 210 <= x0 + width <= 240
        assert y0 + height == 300 or 170 <= y0 + height <= 195
        moved_sides += (x0 > 0) + (y0 > 0) + (x0 + width < 400) + (y0 + height < 300)
    assert 70 <= moved_sides <= 130  # about half of the 200 sides
    every = edge_cut(image, box, side, np.random.default_rng(3), 1.0)[0]
    assert every.shape[0] <= 195 - 75 and every.shape[1] <= 240 - 120
