"""The learned localiser experiment's numpy side (export/localiser_net.py): the peak decoder, the working scale and the
training targets. No TensorFlow, no model: synthetic heatmaps only."""

import math

import numpy as np
import pytest
from PIL import Image

from export.fields import match
from export.localiser_net import MULTIPLE, STRIDE, decode, heat_targets, local_maxima, working_image


def _blob(heat: np.ndarray, x: int, y: int, peak: float, sigma: float = 1.0) -> None:
    h, w = heat.shape
    g = peak * np.exp(-((np.arange(w)[None, :] - x) ** 2 + (np.arange(h)[:, None] - y) ** 2) / (2 * sigma**2))
    np.maximum(heat, g, out=heat)


def test_local_maxima_marks_only_peaks():
    heat = np.zeros((8, 8), np.float32)
    _blob(heat, 2, 3, 0.9)
    _blob(heat, 6, 6, 0.5)
    ys, xs = np.nonzero(local_maxima(heat) & (heat > 0.1))
    assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == [(2, 3), (6, 6)]


def test_decode_boxes_in_original_pixels_best_first_and_threshold():
    heat = np.zeros((40, 50), np.float32)
    size = np.zeros((40, 50, 2), np.float32)
    _blob(heat, 10, 20, 0.9)
    _blob(heat, 35, 8, 0.6)
    _blob(heat, 40, 30, 0.2)  # below the threshold
    size[20, 10] = (math.log(8), math.log(6))  # 32 x 24 working px
    size[8, 35] = (math.log(4), math.log(4))
    factor = 0.5  # working px per original px
    boxes, scores = decode(heat, size, factor, (400, 320), threshold=0.3)
    assert scores.tolist() == pytest.approx([0.9, 0.6])
    # the first peak: cell (10, 20) -> centre (10.5, 20.5) x 4 working px -> (84, 164) original px; 64 x 48 box
    np.testing.assert_allclose(boxes[0], [84 - 32, 164 - 24, 84 + 32, 164 + 24], atol=1e-3)
    np.testing.assert_allclose(boxes[1], [284 - 16, 68 - 16, 284 + 16, 68 + 16], atol=1e-3)


def test_decode_refines_the_centre_between_cells():
    heat = np.zeros((10, 10), np.float32)
    heat[5, 4], heat[5, 5] = 0.5, 0.8  # the true centre lies between the two cells, nearer cell 5
    boxes, _ = decode(heat, np.zeros((10, 10, 2), np.float32), 1.0, (40, 40), threshold=0.3)
    cx = (boxes[0, 0] + boxes[0, 2]) / 2
    assert 4.5 * STRIDE < cx < 5.5 * STRIDE and cx != pytest.approx(5.5 * STRIDE)


def test_decode_drops_a_peak_inside_a_kept_box_and_peaks_in_the_padding():
    heat = np.zeros((30, 30), np.float32)
    size = np.zeros((30, 30, 2), np.float32)
    _blob(heat, 10, 10, 0.9, sigma=0.6)
    _blob(heat, 13, 10, 0.7, sigma=0.6)  # a second lobe, inside the first box (10 cells wide)
    _blob(heat, 25, 25, 0.8, sigma=0.6)  # beyond the real image (the padding)
    size[10, 10] = (math.log(10), math.log(10))
    size[10, 13] = (math.log(2), math.log(2))
    boxes, scores = decode(heat, size, 1.0, (80, 80), threshold=0.3)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.9)


def test_decode_clips_boxes_to_the_image_and_caps_the_count():
    heat = np.zeros((20, 20), np.float32)
    heat[::2, ::2] = np.linspace(0.4, 0.9, 100).reshape(10, 10)
    size = np.zeros((20, 20, 2), np.float32)  # 1 cell = 4 px: no box holds another peak
    boxes, scores = decode(heat, size, 1.0, (60, 60), threshold=0.3, max_cells=5)
    assert len(boxes) == 5 and np.all(np.diff(scores) <= 0)
    every, _ = decode(heat, size, 1.0, (60, 60), threshold=0.3)
    assert len(every) == 64  # MAX_CELLS; the peaks beyond 60 px lie in the padding
    assert every.min() >= 0 and every[:, [0, 2]].max() <= 60 and every[:, [1, 3]].max() <= 60


def test_targets_decode_back_to_the_boxes():
    truth = np.array([[20.0, 30.0, 70.0, 76.0], [100.0, 10.0, 118.0, 30.0], [130.0, 120.0, 158.0, 150.0]])
    heat, size, mask = heat_targets(truth, 160)
    assert heat.shape == (40, 40) and mask.sum() == 3 and heat.max() == 1.0
    boxes, _ = decode(heat, size, 1.0, (160, 160), threshold=0.99)
    assert len(boxes) == 3
    assert len(match(boxes, truth)) == 3
    order = np.argsort(boxes[:, 0])
    widths = boxes[order, 2] - boxes[order, 0]
    np.testing.assert_allclose(widths, truth[:, 2] - truth[:, 0], rtol=1e-5)


def test_working_image_pads_to_the_network_stride_and_reports_the_factor():
    rgb = np.full((480, 640, 3), 200, np.uint8)
    work, factor = working_image(rgb, 320)
    assert work.shape == (256, 320, 3) and factor == pytest.approx(0.5)
    assert work[:240].min() == 200 and work[240:].max() == 0  # black padding below the field
    big = Image.new("RGB", (4000, 3000), (200, 100, 50))
    for image in (big, np.asarray(big)):
        work, factor = working_image(image, 320)
        assert work.shape[0] % MULTIPLE == 0 and work.shape[1] == 320 and factor == pytest.approx(0.08)
        assert tuple(work[100, 100]) == (200, 100, 50)
