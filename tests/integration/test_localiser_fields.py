"""Floors on the localiser's figures on the report split of the whole-field photos (../shared/data/fields).

The figures come from `python -m export.fields`; the floors sit a little under the measured ones (the localiser is
deterministic), so a regression fails. Skipped without ../shared (a failure in CI, CI=true).
A subset of the robustness versions (export.fields.VERSIONS) is floored too; `python -m export.fields` prints them all.
Each figure measured here must also be the model card's (its localisation section, written by `python -m
export.fields --card`), so the card cannot keep figures of an older localiser.
"""

import json
from pathlib import Path

import pytest

from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_FIELDS = ROOT.parent / "shared" / "data" / "fields"

# measured on the report split (stain candidates, touching pairs split, the scale from the red
# cells the image's edge does not cut, corrected for their cover, or from the largest nucleus at a high magnification,
# a second pass inside an eyepiece circle at the eyepiece's red-cell bound, or at the largest nucleus' ruler where red
# cells packed in bands fool the first; each candidate scored by the mean of a logistic on its features and a small
# network on its patch, both fitted on the tune fields and their robustness versions; the nucleus thresholds from the
# centre of the red cells' histogram top; a fourth threshold set inside an eyepiece's circle; fields/txl's repeated
# rows and twice-boxed cells read once; small red cells measured again at a finer size): bccd 0.977 / 0.977 / 0.788,
# txl 0.964 / 0.964 / 0.750, phone 0.940 / 0.963 / - (LOCALISER_VERSION "10"; version 9: phone 0.942 / 0.963; version
# 8, SCORE_MIN 0.675: bccd 0.972 / 0.981, txl 0.960 / 0.971, phone 0.938 / 0.968); the
# floors sit ~0.01 under them (the localiser is deterministic). Issue #17's targets (0.97 / 0.97, phone 0.93 / 0.93,
# scale 0.9+) are above some of them.
FLOORS = {  # set: (recall, precision, scale within +-15%)
    "bccd": (0.965, 0.965, 0.775),
    "txl": (0.95, 0.955, 0.74),
    "phone": (0.925, 0.955, None),
}

CARD = ROOT / "functions" / "classifier" / "model" / "model_card.json"


@pytest.fixture(scope="module")
def card_localisation():
    return json.loads(CARD.read_text())["localisation"]


def assert_as_in_card(measured: dict, stated: dict) -> None:
    """The card's figures are this localiser's (its evaluation is deterministic), as the card stores them."""
    from export.fields import json_figure

    assert {key: json_figure(measured[key]) for key in stated} == stated


@pytest.fixture(scope="module")
def report_fields():
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the localisation floors need the shared fields")
    from export.fields import check_split, load_fields

    fields = load_fields(SHARED_FIELDS.parent)
    check_split(fields)
    return [f for f in fields if f.split == "report"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_report_split_floors(report_fields, card_localisation, name):
    from export.fields import evaluate
    from hematovision.logic.localiser import locate

    tally = evaluate(locate, [f for f in report_fields if f.set == name], SHARED_FIELDS.parent)
    recall, precision, scale = FLOORS[name]
    row = tally.row()
    assert_as_in_card(row, card_localisation["sets"][name])
    assert row["recall"] >= recall, (name, row)
    assert row["precision"] >= precision, (name, row)
    if scale is not None:
        assert row["scale_within"] >= scale, (name, row)


# robustness versions of the report fields (a subset, to keep this test near a minute): measured bccd x0.4 0.977 /
# 0.977, txl x0.4 0.967 / 0.964, bccd vignette 0.964 / 0.905 (a synthetic circle around a 100x field; a box on a cell
# the circle cuts is ignored, export.fields.IGNORED; counted as spurious, version 6: 0.883, version 5: 0.847, version
# 4: 0.917), bccd saturation x0.5 0.968 / 0.977 and txl 0.931 / 0.981 (version 1: recall 0.743 and 0.230), phone
# rotate90 0.942 / 0.961 (version 4: 0.893 / 0.935), phone blur 0.924 / 0.960 and saturation x0.5 0.931 / 0.966
# (version 7: 0.911 / 0.864 and 0.851 / 0.973); the rest: see python -m export.fields
VERSION_FLOORS = {  # (set, version): (recall, precision)
    ("bccd", "scale_x0.4"): (0.965, 0.97),
    ("txl", "scale_x0.4"): (0.95, 0.95),
    ("bccd", "vignette"): (0.95, 0.895),
    ("bccd", "saturation_x0.5"): (0.945, 0.97),
    ("txl", "saturation_x0.5"): (0.9, 0.97),
    ("phone", "rotate90"): (0.925, 0.955),
    ("phone", "blur"): (0.91, 0.945),
    ("phone", "saturation_x0.5"): (0.915, 0.96),
}


@pytest.mark.slow
@pytest.mark.parametrize("name,version", sorted(VERSION_FLOORS))
def test_report_split_version_floors(report_fields, card_localisation, name, version):
    from export.fields import evaluate
    from hematovision.logic.localiser import locate

    tally = evaluate(locate, [f for f in report_fields if f.set == name], SHARED_FIELDS.parent, version)
    recall, precision = VERSION_FLOORS[(name, version)]
    row = tally.row()
    assert_as_in_card(row, card_localisation["versions"][version][name])
    assert row["recall"] >= recall, (name, version, row)
    assert row["precision"] >= precision, (name, version, row)
