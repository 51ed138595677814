"""Training-view augmentations (export/augment.py): orientation, zoom-out and colour transfer."""

import numpy as np
import pytest

from export.augment import colour_jitter, colour_stats, dihedral, match_colour, mixup, random_view, zoom_out


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
    out = zoom_out(image, np.random.default_rng(3))
    assert out.shape == image.shape and out.dtype == np.uint8
    dark_before = (image.sum(axis=2) < 500).mean()
    dark_after = (out.sum(axis=2) < 500).mean()
    assert 0.2 * dark_before < dark_after < 0.8 * dark_before  # the cell is smaller, not gone


def test_colour_stats_ignore_black_rotation_corners():
    image = slide()
    with_corners = image.copy()
    with_corners[:40, :40] = 0
    assert np.allclose(colour_stats(with_corners), colour_stats(image[40:]), atol=3)


def test_match_colour_gives_the_target_statistics():
    target = np.array([196.0, 185.0, 190.0, 20.0, 29.0, 22.0])  # bccd-like
    out = match_colour(slide(), target)
    assert out.dtype == np.uint8
    assert np.allclose(colour_stats(out), target, atol=1.5)


def test_match_colour_keeps_the_cell_darker_than_the_background():
    image = slide()
    out = match_colour(image, np.array([196.0, 185.0, 190.0, 20.0, 29.0, 22.0]))
    cell = image.sum(axis=2) < 500
    assert out[cell].mean() < out[~cell].mean() - 20


def test_random_view_is_reproducible_from_its_seed():
    image = slide()
    targets = np.array([[196.0, 185.0, 190.0, 20.0, 29.0, 22.0]])
    first = random_view(image, np.random.default_rng(11), 0.5, targets, 0.5)
    again = random_view(image, np.random.default_rng(11), 0.5, targets, 0.5)
    assert np.array_equal(first, again)


@pytest.mark.parametrize("seed", range(5))
def test_random_view_without_colour_transfer_is_the_earlier_recipe(seed):
    """No colour targets (the default) must draw the same random numbers as before the option existed."""
    image = slide()
    plain = random_view(image, np.random.default_rng(seed), 0.5)
    zero_probability = random_view(image, np.random.default_rng(seed), 0.5, None, 0.0)
    targets_at_zero = random_view(
        image, np.random.default_rng(seed), 0.5, np.array([[196.0, 185, 190, 20, 29, 22]]), 0.0
    )
    rng = np.random.default_rng(seed)
    expected = zoom_out(image, rng) if rng.random() < 0.5 else image
    expected = colour_jitter(dihedral(expected, int(rng.integers(8))), rng)
    assert np.array_equal(plain, expected) and np.array_equal(zero_probability, expected)
    assert np.array_equal(targets_at_zero, expected)


def test_mixup_blends_each_example_with_a_partner_using_one_lambda_for_features_targets_and_weights():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(32, 4, 4, 2)).astype(np.float16)
    targets = np.eye(4, dtype=np.float32)[rng.integers(4, size=32)]
    weights = rng.uniform(0.5, 2.0, size=32).astype(np.float32)
    mixed_x, mixed_y, mixed_w = mixup(features, targets, weights, np.random.default_rng(1), alpha=0.4)
    assert mixed_x.shape == features.shape and mixed_y.shape == targets.shape and mixed_w.shape == weights.shape
    assert np.allclose(mixed_y.sum(axis=1), 1.0)  # still a distribution over the classes
    assert not np.allclose(mixed_x, features.astype(np.float32))
    lam = np.random.default_rng(1).beta(0.4, 0.4, size=32)
    partner = np.random.default_rng(1)
    partner.beta(0.4, 0.4, size=32)
    partner = partner.permutation(32)
    expected_x = (
        lam[:, None, None, None] * features.astype(np.float32) + (1 - lam[:, None, None, None]) * features[partner]
    )
    assert np.allclose(mixed_x, expected_x, atol=1e-5)
    assert np.allclose(mixed_y, lam[:, None] * targets + (1 - lam[:, None]) * targets[partner], atol=1e-6)
    assert np.allclose(mixed_w, lam * weights + (1 - lam) * weights[partner], atol=1e-6)
