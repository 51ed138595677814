"""export.answer_stability: boxes found on a copy of the photo come back in the photo's pixels, and a changed answer
is one that no longer pairs one to one with the photo's."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from export.answer_stability import changed, enlarged, main, turned, unrotate
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


def test_a_quarter_turn_and_an_enlargement_map_back_to_the_photo():
    image = photo()
    np.testing.assert_allclose(turned(dark_box, image), [(40, 150, 100, 200)])
    np.testing.assert_allclose(enlarged(dark_box, image), [(40, 150, 100, 200)], atol=1.0)
    np.testing.assert_allclose(unrotate(np.zeros((0, 4)), 320), np.zeros((0, 4)))


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
