"""The robustness table's shrunk rows (x0.75, x0.5: the image shrunk onto a canvas of its own size and its median
border colour, export/perturb.scale) must keep the localiser's scale and cell on the classifier's validation images:
the scale is k x the original's within +-15% and a cell is still found (logic/localiser._photo_on_canvas). Measured on
the whole sets (x0.75 / x0.5): within +-15% bccd val 0.92 / 0.86, pbc val 0.98 / 0.95, dbn-select 1.00 / 0.99, no box
on at most 2.6%; before the canvas was recognised, 0.42 / 0.22, 0.79 / 0.20, 0.38 / 0.02, no box on up to 35%. This
test takes a fixed random sample of each set. Skipped without ../shared (a failure in CI, CI=true)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
PER_SET = 60
MIN_WITHIN = 0.75  # share of images whose px_per_um is within +-15% of k x the original's
MAX_NO_BOX = 0.07


@pytest.fixture(scope="module")
def validation_images():
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: the canvas test needs the shared classifier images")
    from export.data import all_splits, dbn_named

    named = {**all_splits(SHARED_DATA), **dbn_named(SHARED_DATA)}
    out = {}
    for name in ("bccd_val", "pbc_val", "dbn_select"):
        samples = sorted(named[name], key=lambda s: s.path.name)
        # bccd val holds augmented copies of each smear next to each other by name: a random sample, seeded
        picked = np.random.default_rng(0).choice(len(samples), min(PER_SET, len(samples)), replace=False)
        out[name] = [np.asarray(Image.open(samples[i].path).convert("RGB")) for i in sorted(picked)]
    return out


@pytest.mark.parametrize("k", [0.75, 0.5])
@pytest.mark.parametrize("name", ["bccd_val", "pbc_val", "dbn_select"])
def test_a_shrunk_image_keeps_its_scale_and_its_cell(validation_images, name, k):
    from export.perturb import scale
    from hematovision.logic.localiser import locate

    within, no_box = [], []
    for image in validation_images[name]:
        original = locate(image)
        shrunk = locate(scale(image, k))
        within.append(abs(shrunk.px_per_um / (k * original.px_per_um) - 1) <= 0.15)
        no_box.append(not shrunk.boxes)
    print(f"{name} x{k}: within +-15% {np.mean(within):.2f}, no box {np.mean(no_box):.2f}")
    assert np.mean(within) >= MIN_WITHIN, f"{name} x{k}: px_per_um within 15% on {np.mean(within):.2f}"
    assert np.mean(no_box) <= MAX_NO_BOX, f"{name} x{k}: no box on {np.mean(no_box):.2f}"
