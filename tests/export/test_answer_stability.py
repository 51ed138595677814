"""export.answer_stability: the photo's boxes land on the same cell in each copy's pixels, and a changed answer is one
that no longer pairs one to one with the photo's."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from export.answer_stability import COPIES, changed, main
from hematovision.logic.localiser import Localisation
from tests.ci import require

SHARED_FIELDS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fields"


def dark_box(rgb) -> Localisation:
    """A stand-in localiser: the bounding box of the dark pixels."""
    ys, xs = np.nonzero(np.asarray(rgb).min(axis=2) < 128)
    return Localisation(boxes=[(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)])


def photo() -> Image.Image:
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).rectangle((40, 150, 99, 199), fill="black")  # x 40-99, y 150-199: off every axis' middle
    return image


def test_each_copy_maps_the_photo_s_boxes_onto_the_same_cell():
    image = photo()
    native = dark_box(image).boxes
    np.testing.assert_allclose(native, [(40, 150, 100, 200)])
    for name, make in COPIES.items():
        copied, mapped = make(image, np.asarray(native, dtype=np.float64))
        np.testing.assert_allclose(
            mapped, dark_box(copied).boxes, atol={"12mp": 2.0, "jpeg85": 1.0, "rot90": 0.0}[name], err_msg=name
        )
        assert not changed(mapped, np.asarray(dark_box(copied).boxes, dtype=np.float64)), name


def test_an_answer_changes_when_a_box_is_lost_added_or_moved_away():
    native = np.array([(0, 0, 40, 40), (100, 100, 140, 140)], dtype=np.float64)
    assert not changed(native, native + 3)
    assert changed(native, native[:1])
    assert changed(native[:1], native)
    assert changed(native, native + [[0, 0, 0, 0], [60, 0, 60, 0]])  # the second box moved off its cell
    assert not changed(np.zeros((0, 4)), np.zeros((0, 4)))


def test_the_command_runs_on_a_few_fields(capsys):
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} not found")
    assert main(["--split", "tune", "--sets", "bccd", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "bccd/tune: 2 fields, answer changed: 12mp" in out and "of 6 checks changed" in out
