"""The learned candidate scorer experiment's numpy side (export/localiser_crops.py): the crops it reads and their
augmentation. No TensorFlow, no model."""

import numpy as np
from PIL import Image

from export.localiser_crops import CROP, crops_of, dihedral


def _field(gains=(1.0, 1.0, 1.0)) -> Image.Image:
    """A pale plasma with one dark square 'nucleus' at (40-60, 20-40)."""
    rgb = np.full((80, 100, 3), (230, 200, 210), dtype=np.float64)
    rgb[20:40, 40:60] = (90, 40, 140)
    return Image.fromarray(np.clip(rgb * np.array(gains), 0, 255).astype(np.uint8))


def test_crops_are_the_boxes_at_crop_size_relative_to_the_background():
    crops = crops_of(_field(), np.array([[30, 10, 70, 50], [0, 0, 20, 20]]))
    assert crops.shape == (2, CROP, CROP, 3) and crops.dtype == np.float32
    # the plasma reads 1 in every channel; the nucleus is dark in the middle of the first crop only
    np.testing.assert_allclose(crops[1], 1.0, atol=0.02)
    centre = crops[0, CROP // 2 - 2 : CROP // 2 + 2, CROP // 2 - 2 : CROP // 2 + 2]
    np.testing.assert_allclose(centre.mean(axis=(0, 1)), np.array([90, 40, 140]) / np.array([230, 200, 210]), atol=0.02)


def test_a_colour_cast_leaves_the_crops_almost_unchanged():
    box = np.array([[30, 10, 70, 50]])
    plain, cast = crops_of(_field(), box), crops_of(_field((1.0, 0.9, 0.7)), box)
    assert np.abs(plain - cast).max() < 0.03


def test_dihedral_only_flips_and_turns():
    rng = np.random.default_rng(0)
    crops = rng.random((64, CROP, CROP, 3)).astype(np.float32)
    out = dihedral(crops, rng)
    assert out.shape == crops.shape
    for a, b in zip(crops, out, strict=True):
        views = [np.rot90(v, t, axes=(0, 1)) for v in (a, a[:, ::-1]) for t in range(4)]
        assert any(np.array_equal(view, b) for view in views)
    assert not np.array_equal(out, crops)  # some were moved
