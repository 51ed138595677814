"""The localiser keeps the white cell when a photo is enlarged so far that its red cells give no ruler (issue #18's
x1.5 / x2 / x3 rows; localiser version 4's nucleus-sized guess).

pbc's cells sit in the middle of 363 px photos whose red cells are ~80 px across: the central 1/k enlarged back to full
size (export.perturb.scale) leaves a few red cells, all cut by the edge. On 20 pbc val images (5 a class, the fixed
subsample), the first box of the enlarged photo must hold the original's first box's centre (carried through the
enlargement) and be at least half as large as that box enlarged (or half the photo, where the enlarged box leaves it):
the cell, not a fragment of its nucleus. Version 3 kept 11 / 8 / 4 of 20 at x1.5 / x2 / x3; version 4 19 / 17 / 10,
and 19 / 18 / 20 with the one-cell fallback (a photo with no nucleus candidate that is one white cell: at x3 the cell
fills most of pbc's photos).
Skipped without ../shared (a failure in CI, CI=true).
"""

from pathlib import Path

import numpy as np
import pytest

from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
FLOORS = {1.5: 18, 2.0: 17, 3.0: 19}  # of 20 (measured 19, 18, 20)


@pytest.fixture(scope="module")
def originals():
    require((SHARED_DATA / "pbc").is_dir(), f"{SHARED_DATA / 'pbc'} is missing: the enlargement check needs pbc")
    from export.data import all_splits, fixed_subsample
    from hematovision.logic.localiser import locate
    from hematovision.logic.preprocessing import decode_image

    samples = fixed_subsample(all_splits(SHARED_DATA)["pbc_val"], 5)
    images = [np.asarray(decode_image(s.path.read_bytes())) for s in samples]
    return [(image, locate(image).boxes[0]) for image in images]


@pytest.mark.parametrize("k", sorted(FLOORS))
def test_the_cell_survives_an_enlargement(originals, k):
    from export.perturb import enlarged_window, scale
    from hematovision.logic.localiser import locate

    kept = 0
    for image, box in originals:
        h, w = image.shape[:2]
        x0, y0, _, _ = enlarged_window(w, h, k)
        cx, cy = ((box[0] + box[2]) / 2 - x0) * k, ((box[1] + box[3]) / 2 - y0) * k
        expected = min(k * max(box[2] - box[0], box[3] - box[1]), max(w, h))
        found = locate(scale(image, k))
        if found.boxes:
            e = found.boxes[0]
            on_cell = e[0] <= cx <= e[2] and e[1] <= cy <= e[3]
            kept += on_cell and max(e[2] - e[0], e[3] - e[1]) >= 0.5 * expected
    assert kept >= FLOORS[k], f"x{k}: the cell kept in {kept} of {len(originals)} enlarged photos"
