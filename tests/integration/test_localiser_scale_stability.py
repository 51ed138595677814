"""A phone photo re-saved as a JPEG keeps its scale (localiser version 10: small red cells measured again at a finer
size, docs/experiments.md "the scale re-measured at a finer size where the red cells are small").

A phone photo's red cells are 7-17 px across at the scale's 256 px working size, where the distance transform's peaks
are a few whole pixels deep: a re-save at JPEG quality 85 moved px_per_um by more than 15% on 7 of the first 60 phone
tune fields with version 9, 4 with version 10 (26 -> 18 of all 174; `build/diag/s29/phone_jpeg.py` in session 29).
Skipped without ../shared (a failure in CI, CI=true).
"""

from pathlib import Path

import numpy as np

from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIELDS = 60
MOVED_AT_MOST = 5  # measured 4 (version 9: 7)


def test_a_jpeg_resave_moves_few_phone_scales():
    require((SHARED_DATA / "fields" / "phone").is_dir(), f"{SHARED_DATA / 'fields'} is missing: the check needs phone")
    from PIL import Image

    from export.answer_stability import resaved
    from export.fields import load_fields
    from hematovision.logic.localiser import locate

    chosen = [f for f in load_fields(SHARED_DATA, ["phone"]) if f.split == "tune"][:FIELDS]
    assert len(chosen) == FIELDS
    moved = 0
    for f in chosen:
        with Image.open(f.path(SHARED_DATA)) as opened:
            image = opened.convert("RGB")
        native = locate(np.asarray(image)).px_per_um
        again = locate(np.asarray(resaved(image, np.zeros((0, 4)))[0])).px_per_um
        moved += abs(again / native - 1) > 0.15
    assert moved <= MOVED_AT_MOST
