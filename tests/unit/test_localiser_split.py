"""The split of merged nucleus groups passes over compact groups without changing a cut (issue #19, speed only).

logic/localiser._split_cut skips the 2-means of a group whose scatter is too small for any split to reach SPLIT_GAP
red-cell diameters between its sides' means with both sides >= SPLIT_SHARE. Model 2.0 is trained on LOCALISER_VERSION
"1" crops, so the cut masks must be exactly those of the full search, kept below as it was written.
"""

import numpy as np

from hematovision.logic import localiser


def _split_cut_full(grouped, low, large, d):
    """_split_cut as LOCALISER_VERSION 1 wrote it (every large group through the eigenvectors and the 2-means)."""
    if not large.any():
        return None
    h, w = low.shape
    box = grouped.bbox()
    cut = np.zeros((h, w), dtype=bool)
    for k in np.nonzero(large)[0]:
        x0, y0, x1, y1 = (int(v) for v in box[k])
        own = localiser._own(grouped, k, x0, y0, x1, y1)
        ys, xs = np.nonzero(own & low[y0:y1, x0:x1])
        if len(xs) < 8:
            continue
        pts = np.stack([xs + x0, ys + y0], axis=1).astype(np.float64)
        px, py = pts[:, 0].copy(), pts[:, 1].copy()
        n, total = len(px), np.array([px.sum(), py.sum()])
        centre = total / n
        _, vectors = np.linalg.eigh(localiser._cov((pts - centre).T))
        side = (pts - centre) @ vectors[:, -1] > 0
        for _ in range(6):
            if side.all() or not side.any():
                break
            a, b = localiser._side_means(px, py, total, side)
            moved = (px - b[0]) ** 2 + (py - b[1]) ** 2 < (px - a[0]) ** 2 + (py - a[1]) ** 2
            if np.array_equal(moved, side):
                break
            side = moved
        if side.all() or not side.any():
            continue
        a, b = localiser._side_means(px, py, total, side)
        gap = float(np.hypot(*(b - a)))
        if gap < localiser.SPLIT_GAP * d or min(side.mean(), 1 - side.mean()) < localiser.SPLIT_SHARE:
            continue
        u = (b - a) / gap
        gy, gx = np.mgrid[y0:y1, x0:x1]
        along = (gx - (a[0] + b[0]) / 2) * u[0] + (gy - (a[1] + b[1]) / 2) * u[1]
        cut[y0:y1, x0:x1] |= own & (np.abs(along) <= 1.0)
    return cut if cut.any() else None


def _nuclei_masks(seed: int, count: int):
    """(low, d): nucleus-like masks, one to three blobs (discs and ellipses, some touching, some far apart, some
    unequal), on a 60-120 px field, with the red-cell diameter d of the localiser's small image (10-20 px)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(60, 120, 2))
        d = float(rng.uniform(10, 20))
        gy, gx = np.mgrid[0:h, 0:w]
        low = np.zeros((h, w), dtype=bool)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        for _ in range(int(rng.integers(1, 4))):
            rx, ry = rng.uniform(0.2, 1.2) * d, rng.uniform(0.2, 1.2) * d
            low |= ((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2 <= 1.0
            angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.6) * d
            cx, cy = cx + step * np.cos(angle), cy + step * np.sin(angle)
        low &= rng.random((h, w)) > rng.choice([0.0, 0.05, 0.2])  # ragged, holed nuclei
        yield low, d


def test_split_cut_is_the_full_search():
    cuts = skipped = 0
    for low, d in _nuclei_masks(3, 1500):
        joined = localiser._dilate(low, max(1, round(localiser.LOBE_GAP * d / 2)))
        grouped = localiser.label(joined)
        large = grouped.area() >= 8  # every group that holds a few pixels, not only the localiser's large ones
        expected = _split_cut_full(grouped, low, large, d)
        got = localiser._split_cut(grouped, low, large, d)
        assert (got is None) == (expected is None)
        if expected is not None:
            np.testing.assert_array_equal(got, expected)
            cuts += 1
        else:
            skipped += 1
    assert cuts > 50 and skipped > 50  # both outcomes exercised, near the threshold too
