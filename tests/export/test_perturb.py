"""The robustness table's perturbations (export/perturb.py): pure, same size, and what the issue says they are."""

import numpy as np
import pytest
from PIL import Image

from export.perturb import (
    BLUE_GAINS,
    PERTURBATIONS,
    YELLOW_GAINS,
    blur,
    brightness,
    enlarged_window,
    gains,
    hue,
    jpeg,
    saturation,
    scale,
)

BACKGROUND = (225, 200, 190)
CELL = (110, 60, 150)


def field(width=320, height=240) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[...] = BACKGROUND
    y, x = np.mgrid[:height, :width]
    image[(x - width / 2) ** 2 + (y - height / 2) ** 2 < 40**2] = CELL
    return image


def cell_area(image: np.ndarray) -> float:
    return float((np.abs(image.astype(int) - CELL).sum(axis=2) < 60).sum())


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_keeps_the_canvas_and_the_input(name):
    image = field()
    before = image.copy()
    out = PERTURBATIONS[name](image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(image, before)  # pure: the input is not modified


def test_the_table_lists_exactly_the_issues_perturbations():
    assert len(PERTURBATIONS) == 14


@pytest.mark.parametrize("k", [0.5, 0.75, 1.5, 2.0, 3.0])
def test_scale_changes_the_cell_area_by_k_squared(k):
    image = field()
    out = scale(image, k)
    assert out.shape == image.shape
    assert cell_area(out) / cell_area(image) == pytest.approx(k * k, rel=0.08)
    if k < 1:  # the corners are the median border colour
        assert tuple(out[0, 0]) == BACKGROUND and tuple(out[-1, -1]) == BACKGROUND


def test_an_enlargement_keeps_the_central_window_and_cuts_an_off_centre_cell_out():
    assert enlarged_window(320, 240, 2.0) == (80.0, 60.0, 240.0, 180.0)
    assert enlarged_window(300, 300, 3.0) == (100.0, 100.0, 200.0, 200.0)
    off_centre = np.empty((240, 320, 3), np.uint8)
    off_centre[...] = BACKGROUND
    y, x = np.mgrid[:240, :320]
    off_centre[(x - 50) ** 2 + (y - 50) ** 2 < 30**2] = CELL  # inside the image, outside its central half
    assert cell_area(off_centre) > 0 and cell_area(scale(off_centre, 2.0)) == 0


def test_gains_on_a_flat_colour():
    flat = np.full((8, 8, 3), (200, 150, 100), np.uint8)
    assert tuple(gains(flat, YELLOW_GAINS)[0, 0]) == (210, 150, 72)
    assert tuple(gains(flat, BLUE_GAINS)[0, 0]) == (160, 138, 108)
    assert tuple(brightness(flat, 1.25)[0, 0]) == (250, 188, 125)
    assert tuple(brightness(flat, 0.75)[0, 0]) == (150, 112, 75)
    assert tuple(gains(np.full((1, 1, 3), 250, np.uint8), YELLOW_GAINS)[0, 0]) == (255, 250, 180)  # clipped


def test_hue_rotates_and_saturation_halves_on_a_flat_colour():
    import colorsys

    flat = np.full((4, 4, 3), (200, 100, 100), np.uint8)
    for degrees in (15, -15):
        r, g, b = hue(flat, degrees)[0, 0] / 255.0
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        assert ((h * 360 + 180) % 360 - 180) == pytest.approx(degrees, abs=2.0)
        assert s == pytest.approx(0.5, abs=0.02) and v == pytest.approx(200 / 255, abs=0.01)
    grey = np.asarray(Image.fromarray(flat).convert("L"))[0, 0]
    half = saturation(flat, 0.5)[0, 0].astype(int)
    assert np.abs(half - (np.array([200, 100, 100]) + grey) / 2).max() <= 1


def test_blur_and_jpeg_degrade_but_keep_the_mean():
    image = field()
    for out in (blur(image, 1.5), jpeg(image, 40)):
        assert not np.array_equal(out, image)
        assert abs(out.astype(float).mean() - image.astype(float).mean()) < 2
    edge = np.abs(np.diff(image.astype(int), axis=1)).max()
    assert np.abs(np.diff(blur(image, 1.5).astype(int), axis=1)).max() < 0.6 * edge
