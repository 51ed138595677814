"""The localiser's levels from counts of distinct values give exactly what numpy gave on the pixels (issue #19).

logic/localiser.py computes the red cells' level (_cell_level) and the background's brightness cut from a count of
each distinct value (DensityCounts) instead of sorting thousands of pixels. Model 2.0 is trained on LOCALISER_VERSION
"1" crops, so each result must be numpy's on the pixels bit for bit: np.percentile here, and _cell_level against the
pixel version it replaced (kept below as it was written).
"""

import numpy as np
import pytest

from hematovision.logic import localiser
from hematovision.logic.localiser import DensityCounts


def _cell_level_of_pixels(od_g: np.ndarray, percentile: float = 95.0, cut: float = 0.25) -> float:
    """_cell_level as LOCALISER_VERSION 1 wrote it, on the sampled pixels' green OD."""
    reference = float(np.percentile(od_g, percentile))
    cells = od_g[od_g > max(0.06, cut * reference)]
    if cells.size < 16:
        return max(float(np.percentile(od_g, 95)), 0.05)
    hist, edges = np.histogram(cells, bins=48, range=(0.0, float(np.percentile(cells, 98)) + 1e-6))
    smooth = np.convolve(hist, np.ones(5) / 5, mode="same")
    peak = int(np.argmax(smooth))
    return max(float((edges[peak] + edges[peak + 1]) / 2), 0.05)


def _green_samples(seed: int, count: int):
    """(table, uint8 levels): a background's density table and a sample of green levels, from one pixel to ~20,000,
    uniform, clustered (a smear: background, red cells, nuclei) or a single value."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        bg = np.array([rng.uniform(8.0, 255.0) for _ in range(3)], dtype=np.float32)
        table = localiser._od_table(bg, 1)
        n = int(rng.choice([1, 2, 3, 15, 16, 17, 100, 1001, 19200]))
        kind = rng.integers(0, 3)
        if kind == 0:
            levels = rng.integers(0, 256, n)
        elif kind == 1:
            centres = rng.choice([rng.uniform(150, 250), rng.uniform(90, 180), rng.uniform(20, 90)], n)
            levels = np.clip(rng.normal(centres, rng.uniform(1, 15)), 0, 255)
        else:
            levels = np.full(n, rng.integers(0, 256))
        yield table, levels.astype(np.uint8)


@pytest.mark.parametrize("q", [95.0, 75.0, 98, 95, 50, 0, 100, 2.5, 99.99])
def test_percentile_of_counts_is_numpys(q):
    for table, levels in _green_samples(int(q * 100), 300):
        counts = DensityCounts.of(table, np.bincount(levels, minlength=256))
        expected = np.percentile(table[levels], q)
        got = counts.percentile(q)
        assert np.asarray(got).dtype == expected.dtype and np.asarray(got).tobytes() == expected.tobytes(), (q, levels)


def test_percentile_of_integer_sums_is_numpys():
    """The background's cut: a percentile of int32 sums of three channels (float64 interpolation)."""
    rng = np.random.default_rng(7)
    values = np.arange(766, dtype=np.int32)
    for _ in range(300):
        n = int(rng.choice([1, 2, 7, 500, 19200]))
        lum = rng.integers(0, int(rng.integers(1, 766)) + 1, n).astype(np.int32)
        counts = DensityCounts.of(values, np.bincount(lum, minlength=766))
        for q in (95, 95.0, 50):
            expected = np.percentile(lum, q)
            got = counts.percentile(q)
            assert np.asarray(got).dtype == expected.dtype and np.asarray(got).tobytes() == expected.tobytes()


def test_cell_level_of_counts_is_the_pixel_version():
    for table, levels in _green_samples(11, 1500):
        counts = DensityCounts.of(table, np.bincount(levels, minlength=256))
        for percentile, cut in ((95.0, 0.25), (75.0, localiser.LEVEL_CUT)):
            expected = _cell_level_of_pixels(table[levels], percentile, cut)
            assert localiser._cell_level(counts, percentile, cut) == expected


def test_empty_sample_fails_as_numpy_does():
    empty = DensityCounts.of(np.arange(4, dtype=np.float32), np.zeros(4, dtype=np.int64))
    assert empty.total == 0
    with pytest.raises(IndexError):
        np.percentile(np.zeros(0, dtype=np.float32), 95)
    with pytest.raises(IndexError):
        empty.percentile(95)


def test_median_of_whole_areas_as_integers_is_numpys():
    """_rbc_diameter takes the median of the pieces' areas (float64 whole pixel counts) as int64: the same float64."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        areas = rng.integers(4, int(rng.choice([10, 1000, 70000])), int(rng.integers(1, 400))).astype(np.float64)
        assert float(np.median(areas.astype(np.int64))) == float(np.median(areas))


def test_a_first_localisation_imports_no_masked_arrays():
    """np.median of floats imports numpy.ma (~20 ms) on its first call: the cold start's first classify avoids it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from hematovision.logic.localiser import locate\n"
        "rng = np.random.default_rng(0)\n"
        "image = np.full((240, 320, 3), 225, np.uint8)\n"
        "for y, x in rng.integers(10, 230, (60, 2)):\n"
        "    image[y - 8 : y + 8, x - 8 : x + 8] = (200, 120, 130)\n"
        "image[100:130, 150:180] = (90, 40, 140)\n"
        "locate(image)\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.strip() == "False"
