"""export.fields' synthetic eyepiece circle: a white cell the circle cuts is dropped from the truth, and a box on its
visible part is ignored (neither matched nor spurious); a box on the black outside, or elsewhere, still counts."""

import numpy as np
from PIL import Image

from export.fields import FieldImage, cut_by_edge, cut_by_vignette, evaluate, on_ignored, vignette
from hematovision.logic.localiser import Localisation

SIZE = (640, 480)  # the circle: centre (320, 240), radius 240


def one_field(tmp_path, set_name: str, wbc: list) -> FieldImage:
    """A blank SIZE image saved as fields/<set_name>/f.png under tmp_path, with these true boxes."""
    (tmp_path / "fields" / set_name).mkdir(parents=True)
    Image.new("RGB", SIZE, (230, 220, 230)).save(tmp_path / "fields" / set_name / "f.png")
    return FieldImage(set_name, "f.png", "0" * 64, "report", wbc=np.array(wbc, dtype=np.float64))


def answering(found: list):
    """A localiser that answers these boxes on any image."""
    return lambda rgb: Localisation(width=rgb.shape[1], height=rgb.shape[0], boxes=list(found))


def test_a_cell_the_circle_cuts_is_dropped_from_the_truth_and_ignored():
    inside = (300, 220, 340, 260)
    cut = (520, 200, 600, 280)  # centre x 560: 240 px from the centre, on the circle; its left part inside
    outside = (0, 0, 30, 30)  # a corner: black under the vignette
    wbc = np.array([inside, cut, outside], dtype=np.float64)
    _, kept = vignette(Image.new("RGB", SIZE), wbc)
    np.testing.assert_array_equal(kept, [inside])
    np.testing.assert_array_equal(cut_by_vignette(SIZE, wbc), [cut])


def test_only_unmatched_boxes_centred_in_an_ignored_box_are_left_out():
    boxes = np.array([(300, 220, 340, 260), (520, 210, 580, 270), (100, 100, 140, 140)], dtype=np.float64)
    ignored = np.array([(520, 200, 600, 280)], dtype=np.float64)
    assert on_ignored(boxes, [(0, 0)], ignored) == [1]
    assert on_ignored(boxes, [(0, 0), (1, 1)], ignored) == []  # a matched box is matched, whatever it lies in
    assert on_ignored(boxes, [(0, 0)], np.zeros((0, 4))) == []


def test_evaluate_does_not_count_a_box_on_a_cut_cell_as_spurious(tmp_path):
    inside, cut = (300, 220, 340, 260), (520, 200, 600, 280)
    field = one_field(tmp_path, "bccd", [inside, cut])

    on_cut = evaluate(answering([inside, (530, 215, 570, 265)]), [field], tmp_path, version="vignette")
    assert (on_cut.true, on_cut.matched, on_cut.predicted) == (1, 1, 1) and on_cut.misses == []
    spurious = evaluate(answering([inside, (100, 380, 140, 420)]), [field], tmp_path, version="vignette")
    assert (spurious.true, spurious.matched, spurious.predicted) == (1, 1, 2)
    plain = evaluate(answering([inside, (530, 215, 570, 265)]), [field], tmp_path)  # no circle: the cut cell is a cell
    assert (plain.true, plain.matched, plain.predicted) == (2, 2, 2)


def test_slivers_at_the_image_edge_are_edge_cut_and_whole_cells_touching_it_are_not():
    wbc = np.array(
        [
            (335, 0, 524, 55),  # a sliver along the top edge (fields/txl boxes these)
            (0, 300, 19, 374),  # a sliver along the left edge
            (520, 200, 640, 330),  # touches the right edge, most of the cell in view
            (300, 220, 340, 260),  # nowhere near an edge
        ],
        dtype=np.float64,
    )
    assert cut_by_edge(SIZE, wbc).tolist() == [True, True, False, False]


def test_evaluate_can_ignore_edge_cut_slivers_found_or_not(tmp_path):
    inside, sliver = (300, 220, 340, 260), (335, 0, 524, 55)
    field = one_field(tmp_path, "txl", [inside, sliver])

    missed = evaluate(answering([inside]), [field], tmp_path, edge_cut="ignore")
    assert (missed.true, missed.matched, missed.predicted) == (1, 1, 1)
    found = evaluate(answering([inside, (400, 0, 460, 50)]), [field], tmp_path, edge_cut="ignore")
    assert (found.true, found.matched, found.predicted) == (1, 1, 1)
    counted = evaluate(answering([inside]), [field], tmp_path)  # the default counts the sliver as a cell
    assert (counted.true, counted.matched, counted.predicted) == (2, 1, 1)


def test_ignore_touching_leaves_out_every_cell_at_the_edge_boxed_or_not(tmp_path):
    inside, at_edge = (300, 220, 340, 260), (560, 200, 640, 280)  # at_edge: most of the cell in view
    field = one_field(tmp_path, "bccd", [inside, at_edge])

    unboxed_cell = (0, 100, 60, 160)  # a box at the left edge where the truth has none
    rule = "ignore-touching"
    tally = evaluate(answering([inside, unboxed_cell]), [field], tmp_path, edge_cut=rule)
    assert (tally.true, tally.matched, tally.predicted) == (1, 1, 1)
    spurious = evaluate(answering([inside, (100, 100, 160, 160)]), [field], tmp_path, edge_cut=rule)
    assert (spurious.true, spurious.matched, spurious.predicted) == (1, 1, 2)  # away from the edge: still counted
    assert evaluate(answering([inside]), [field], tmp_path, edge_cut="ignore").true == 2  # not a sliver: a cell
