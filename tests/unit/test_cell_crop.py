"""The cell-centred, scale-normalised crop (logic/cell_crop.py), on synthetic images."""

import numpy as np
import pytest
from PIL import Image

from hematovision.logic.cell_crop import (
    BOX_CROP,
    border_colour,
    crop_cells,
    crop_side,
    model_input,
    square_crop,
)
from hematovision.logic.localiser import Localisation
from hematovision.logic.preprocessing import to_model_input

BACKGROUND = (225, 200, 190)
CELL = (110, 60, 150)


def field(width=400, height=300, cells=((200, 150, 30),), background=BACKGROUND) -> np.ndarray:
    """A flat background with dark discs (x, y, radius)."""
    image = np.empty((height, width, 3), np.uint8)
    image[...] = background
    y, x = np.mgrid[:height, :width]
    for cx, cy, r in cells:
        image[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = CELL
    return image


def box_of(cx, cy, r):
    return (cx - r, cy - r, cx + r, cy + r)


def disc_fraction(crop: np.ndarray) -> float:
    return float((np.abs(crop.astype(int) - CELL).sum(axis=2) < 60).mean())


def test_the_crop_covers_crop_um_with_the_red_cell_ruler():
    # px_per_um 10: a 22 um crop is 220 px; a 30 px-radius disc covers pi 30^2 / 220^2 of it
    image = field()
    where = Localisation(boxes=[box_of(200, 150, 30)], px_per_um=10.0, ruler="red_cells", width=400, height=300)
    (crop,) = crop_cells(image, where, crop_um=22.0, size=160)
    assert crop.pixels.shape == (160, 160, 3) and crop.pixels.dtype == np.uint8
    assert crop.ruler == "red_cells" and crop.side == pytest.approx(220.0)
    assert disc_fraction(crop.pixels) == pytest.approx(np.pi * 30**2 / 220**2, abs=0.01)
    # centred: the disc's centroid is the crop's centre
    ys, xs = np.nonzero(np.abs(crop.pixels.astype(int) - CELL).sum(axis=2) < 60)
    assert abs(xs.mean() - 79.5) < 1.5 and abs(ys.mean() - 79.5) < 1.5


def test_the_same_cell_at_two_magnifications_gives_the_same_crop():
    small = field(400, 300, ((200, 150, 30),))
    large = np.asarray(Image.fromarray(small).resize((800, 600), Image.Resampling.NEAREST))
    a = crop_cells(small, Localisation(boxes=[box_of(200, 150, 30)], px_per_um=10.0, ruler="red_cells"), 22.0, 128)
    b = crop_cells(large, Localisation(boxes=[box_of(400, 300, 60)], px_per_um=20.0, ruler="red_cells"), 22.0, 128)
    assert disc_fraction(a[0].pixels) == pytest.approx(disc_fraction(b[0].pixels), abs=0.01)


def test_without_a_red_cell_ruler_the_crop_follows_the_box():
    where = Localisation(boxes=[box_of(200, 150, 30)], px_per_um=4.0, ruler="default")
    (crop,) = crop_cells(field(), where, crop_um=22.0, size=96)
    assert crop.ruler == "box" and crop.side == pytest.approx(BOX_CROP * 60)
    assert crop_side((0, 0, 50, 80), None, "red_cells", 22.0) == (BOX_CROP * 80, "box")


def test_a_crop_leaving_the_image_is_padded_with_the_border_colour():
    image = field(cells=((20, 20, 15),))
    where = Localisation(boxes=[box_of(20, 20, 15)], px_per_um=10.0, ruler="red_cells")
    (crop,) = crop_cells(image, where, crop_um=20.0, size=100)
    # the 200 px crop is centred on (20, 20): its top-left ~40% on each axis is outside the image
    assert np.array_equal(crop.pixels[5, 5], BACKGROUND) and np.array_equal(crop.pixels[-5, -5], BACKGROUND)
    assert disc_fraction(crop.pixels) == pytest.approx(np.pi * 15**2 / 200**2, abs=0.01)


def test_the_border_colour_ignores_black_rotation_corners():
    image = field()
    y, x = np.mgrid[:300, :400]
    image[(x + y) < 120] = 0  # a black corner, as bccd TRAIN frames have
    assert border_colour(image) == BACKGROUND
    assert border_colour(np.zeros((20, 20, 3), np.uint8)) == (0, 0, 0)


def test_pil_and_numpy_images_give_the_same_crops():
    image = field()
    where = Localisation(boxes=[box_of(200, 150, 30), box_of(60, 60, 20)], px_per_um=10.0, ruler="red_cells")
    from_numpy = crop_cells(image, where, 22.0, 64)
    from_pil = crop_cells(Image.fromarray(image), where, 22.0, 64)
    assert len(from_numpy) == 2
    for a, b in zip(from_numpy, from_pil, strict=True):
        assert np.array_equal(a.pixels, b.pixels) and a.box == b.box


def test_scale_jitter_multiplies_the_side():
    where = Localisation(boxes=[box_of(200, 150, 30)], px_per_um=10.0, ruler="red_cells")
    (crop,) = crop_cells(field(), where, 22.0, 64, scale=0.9)
    assert crop.side == pytest.approx(198.0)


def test_model_input_is_the_first_cell_or_the_whole_frame():
    image = field()
    found = Localisation(boxes=[box_of(200, 150, 30), box_of(60, 60, 20)], px_per_um=10.0, ruler="red_cells")
    chosen = model_input(image, found, 22.0, 64)
    assert chosen.crop == "cell" and chosen.cells == 2 and chosen.ruler == "red_cells"
    assert np.array_equal(chosen.pixels, crop_cells(image, found, 22.0, 64)[0].pixels)
    nothing = model_input(image, Localisation(), 22.0, 64)
    assert nothing.crop == "frame" and nothing.ruler == "none" and nothing.cells == 0
    assert np.array_equal(nothing.pixels, to_model_input(Image.fromarray(image), 64))


def test_square_crop_inside_the_image_is_a_plain_resize():
    image = field()
    crop = square_crop(image, (200, 150), 100, 100)
    assert np.array_equal(crop, image[100:200, 150:250])
