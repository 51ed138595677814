"""Training-view augmentations (export/augment.py): orientation, zoom-out and colour jitter."""

import hashlib

import numpy as np
import pytest

from export.augment import colour_jitter, dihedral, random_view, zoom_out
from export.recipe import RECIPE_FILE, Recipe

AUGMENTATION = Recipe.load(RECIPE_FILE).augmentation
# sha256 of random_view(slide(), default_rng(seed), AUGMENTATION, p) for seeds 0-39 and p in (0, 0.5), as the
# shipped model's recipe drew them: the training views of `make train` are the 1.2.0 model's.
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


def test_the_committed_recipe_draws_the_shipped_models_views():
    image = slide()
    digest = hashlib.sha256()
    for seed in range(40):
        for probability in (0.0, 0.5):
            digest.update(random_view(image, np.random.default_rng(seed), AUGMENTATION, probability).tobytes())
    assert digest.hexdigest() == RECIPE_1_2_0_VIEWS
