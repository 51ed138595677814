"""localiser.candidate_patches: each candidate box cut from the working copy, PATCH_SIDE a side, divided by the
background colour (so a colour cast cancels), in [0, 1]; the candidate network (export/candidate_net.py) learns on
exactly these."""

import numpy as np
import pytest

from hematovision.logic import localiser as L

BACKGROUND = (228, 214, 236)
NUCLEUS = (96, 52, 140)


def field(width: int, height: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:] = BACKGROUND
    yy, xx = np.mgrid[0:height, 0:width]
    rgb[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2] = NUCLEUS
    return rgb


def patches_of(rgb: np.ndarray, boxes) -> np.ndarray:
    _, copy = L._working_copy(rgb)
    return L.candidate_patches(copy, np.asarray(boxes, dtype=np.float64))


def test_a_patch_is_the_box_resized_and_divided_by_the_background():
    rgb = field(640, 480, (300, 200), 30)
    patch = patches_of(rgb, [(260, 160, 340, 240)])
    assert patch.shape == (1, L.PATCH_SIDE, L.PATCH_SIDE, 3) and patch.dtype == np.float32
    centre = patch[0, L.PATCH_SIDE // 2, L.PATCH_SIDE // 2]
    corner = patch[0, 0, 0]
    np.testing.assert_allclose(corner, 1 / L.PATCH_TOP, atol=0.02)  # the background divided by itself
    np.testing.assert_allclose(centre, np.array(NUCLEUS) / np.array(BACKGROUND) / L.PATCH_TOP, atol=0.03)


def test_boxes_are_in_the_original_pixels_of_a_photo_the_working_copy_reduces():
    rgb = field(2000, 1500, (1500, 400), 90)  # the working copy is 400 x 300: a factor of 0.2
    on, off = patches_of(rgb, [(1380, 280, 1620, 520), (200, 1000, 440, 1240)])
    assert on[L.PATCH_SIDE // 2, L.PATCH_SIDE // 2].mean() < 0.6 / L.PATCH_TOP
    np.testing.assert_allclose(off, 1 / L.PATCH_TOP, atol=0.02)


@pytest.mark.parametrize("gains", [(1.0, 0.85, 0.6), (0.7, 0.9, 1.0)])
def test_a_colour_cast_cancels(gains):
    rgb = field(640, 480, (320, 240), 40)
    cast = np.clip(rgb * np.array(gains), 0, 255).round().astype(np.uint8)
    box = [(270, 190, 370, 290)]
    np.testing.assert_allclose(patches_of(cast, box), patches_of(rgb, box), atol=0.03)


def test_no_box_no_patch():
    assert patches_of(field(64, 64, (32, 32), 8), np.zeros((0, 4))).shape == (0, L.PATCH_SIDE, L.PATCH_SIDE, 3)
