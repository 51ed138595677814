"""The localiser's fast helpers give exactly what the slower code they replaced gave (issue #19, speed only).

Model 2.0 is trained on the crops of the current LOCALISER_VERSION, so a speed change may not move a single answer.
Each helper is checked here against the straightforward version on random inputs (shapes down to 1 pixel, sparse to
full masks); tests/integration/test_localiser_reference.py and `python -m bench.locate_equality` check whole answers.
"""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from hematovision.logic import localiser


def _masks(seed: int, count: int, max_side: int = 40):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(1, max_side, 2))
        yield rng.random((h, w)) < rng.choice([0.002, 0.05, 0.3, 0.7, 0.95, 1.0])


def test_max3_is_pillows_max_filter():
    rng = np.random.default_rng(3)
    for _ in range(400):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        plane = rng.integers(0, int(rng.integers(1, 256)), (h, w)).astype(np.uint8)
        expected = np.asarray(Image.fromarray(plane).filter(ImageFilter.MaxFilter(3)))
        np.testing.assert_array_equal(localiser._max3(plane), expected)


@pytest.mark.parametrize("radius", range(1, localiser.EXACT_DILATE_RADIUS + 1))
def test_dilate_is_pillows_box_blur_above_zero(radius):
    for mask in _masks(radius, 300):
        expected = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.BoxBlur(radius))) > 0
        np.testing.assert_array_equal(localiser._dilate(mask, radius), expected)


def _erode(mask: np.ndarray, step: int) -> np.ndarray:
    """The erosion as LOCALISER_VERSION 1 wrote it: on the bare mask, its edge unset after each step."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    if step % 2 == 0:
        rows = out.copy()
        out[:, 1:] &= rows[:, :-1]
        out[:, :-1] &= rows[:, 1:]
    else:
        out[:, 1:] &= mask[:, :-1]
        out[:, :-1] &= mask[:, 1:]
    out[0, :] = out[-1, :] = False
    out[:, 0] = out[:, -1] = False
    return out


def test_erosion_depth_is_the_step_by_step_erosion():
    for mask in _masks(5, 600, max_side=60):
        distance = np.zeros(mask.shape, dtype=np.int32)
        current, step = mask, 0
        while current.any() and step < 255:
            distance += current
            current = _erode(current, step)
            step += 1
        np.testing.assert_array_equal(localiser._erosion_depth(mask), distance)


def _components(mask: np.ndarray) -> np.ndarray:
    """A label image by flood fill (8-connected), components numbered in reading order of their first pixel."""
    labels = np.zeros(mask.shape, dtype=np.int64)
    h, w = mask.shape
    count = 0
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or labels[y, x]:
                continue
            count += 1
            stack = [(y, x)]
            labels[y, x] = count
            while stack:
                cy, cx = stack.pop()
                for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                    for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                        if mask[ny, nx] and not labels[ny, nx]:
                            labels[ny, nx] = count
                            stack.append((ny, nx))
    return labels


def test_label_numbers_components_in_reading_order():
    for mask in _masks(7, 300, max_side=30):
        runs = localiser.label(mask)
        expected = _components(mask)
        assert runs.count == expected.max()
        painted = np.rint(runs.paint(mask.shape, np.arange(1, runs.count + 1))).astype(np.int64)
        np.testing.assert_array_equal(painted, expected)
        keep = np.arange(runs.count) % 2 == 0
        np.testing.assert_array_equal(runs.mask(keep), runs.paint(mask.shape, keep.astype(np.float64)) > 0)
        for k in range(runs.count):
            x0, y0, x1, y1 = (int(v) for v in runs.bbox()[k])
            np.testing.assert_array_equal(localiser._own(runs, k, x0, y0, x1, y1), expected[y0:y1, x0:x1] == k + 1)


def test_cov_is_numpys_cov():
    rng = np.random.default_rng(11)
    for _ in range(500):
        n = int(rng.integers(8, 3000))
        pts = rng.integers(0, 400, (n, 2)).astype(np.float64)
        if rng.random() < 0.5:
            pts = pts + rng.random((n, 2))
        centred = pts - pts.mean(axis=0)
        assert localiser._cov(centred.T).tobytes() == np.cov(centred.T).tobytes()


def test_a_channel_resized_alone_is_that_channel_of_the_resized_image():
    rng = np.random.default_rng(13)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(16, 420, 2))
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        size = (max(1, int(w * rng.uniform(0.2, 1.0))), max(1, int(h * rng.uniform(0.2, 1.0))))
        whole = np.asarray(localiser._resize(image, size))[:, :, 1]
        np.testing.assert_array_equal(np.asarray(localiser._resize(image.getchannel(1), size)), whole)
