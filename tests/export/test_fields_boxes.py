"""export.fields.load_fields reads boxes.csv as the cells it annotates: an exactly repeated row is one cell, and so are
two WBC boxes that match each other (each centre inside the other: one cell boxed twice)."""

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from export.fields import DUPLICATE_ROWS, SAME_CELL_BOXES, load_fields, one_box_per_cell
from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_FIELDS = ROOT.parent / "shared" / "data" / "fields"


def _write_set(root: Path, rows: list[tuple]) -> None:
    folder = root / "fields" / "txl"
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (64, 48), (230, 200, 210)).save(folder / "images" / "a.png")
    with open(folder / "MANIFEST.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("path",), ("images/a.png",)])
    with open(folder / "boxes.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "label", "xmin", "ymin", "xmax", "ymax"), *rows])


def test_a_repeated_row_is_one_cell(tmp_path):
    cell, other = ("images/a.png", "WBC", 10, 10, 30, 30), ("images/a.png", "WBC", 31, 10, 50, 30)
    rbc = ("images/a.png", "RBC", 0, 0, 8, 8)
    _write_set(tmp_path, [cell, cell, cell, other, rbc, rbc])
    (field,) = load_fields(tmp_path, ("txl",))
    np.testing.assert_array_equal(field.wbc, [[10, 10, 30, 30], [31, 10, 50, 30]])
    assert len(field.rbc) == 1


def test_the_shared_sets_hold_the_repeated_rows_the_module_names():
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the repeated rows are counted on the shared fields")
    for name in ("bccd", "txl", "phone"):
        with open(SHARED_FIELDS / name / "boxes.csv", newline="") as handle:
            rows = [tuple(r) for r in csv.reader(handle)][1:]
        assert len(rows) - len(set(rows)) == DUPLICATE_ROWS.get(name, 0), name


def test_no_field_lists_the_same_box_twice():
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the fields are read from it")
    for f in load_fields(SHARED_FIELDS.parent):
        for boxes in (f.wbc, f.rbc):
            assert len({tuple(b) for b in boxes.tolist()}) == len(boxes), f.image


def test_two_boxes_of_one_cell_are_one_cell_and_neighbours_stay_two():
    first, again = [277, 170, 416, 351], [286, 157, 416, 322]  # fields/txl test_9a5a40ca's neutrophil, boxed twice
    touching = [400, 170, 520, 351]  # a neighbour: its centre lies outside the first box
    np.testing.assert_array_equal(one_box_per_cell(np.array([first, again, touching])), [first, touching])
    assert one_box_per_cell(np.zeros((0, 4))).shape == (0, 4)


def test_the_shared_sets_hold_the_twice_boxed_cells_the_module_names():
    require(
        SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the twice-boxed cells are counted on the shared fields"
    )
    fields = load_fields(SHARED_FIELDS.parent)
    for name in ("bccd", "txl", "phone"):
        with open(SHARED_FIELDS / name / "boxes.csv", newline="") as handle:
            distinct = {tuple(r.values()) for r in csv.DictReader(handle) if r["label"] == "WBC"}
        read = sum(len(f.wbc) for f in fields if f.set == name)
        assert len(distinct) - read == SAME_CELL_BOXES.get(name, 0), name
