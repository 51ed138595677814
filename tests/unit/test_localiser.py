"""The stain-based white-cell localiser on synthetic fields: boxes, scale, empty fields, casts, vignette, bad input."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hematovision.logic.localiser import RBC_DIAMETER_UM, Localisation, label, locate

BACKGROUND = (232, 226, 222)
RBC = (205, 140, 150)
NUCLEUS = (95, 60, 150)
CYTOPLASM = (215, 190, 215)


def field(size=(640, 480), rbc=40, wbc=((320, 240),), seed=0, vignette=False, gains=(1.0, 1.0, 1.0)):
    """RBC discs (diameter `rbc`) on a grid with jitter, a three-lobed nucleus in pale cytoplasm at each wbc centre."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = int(rbc * 1.35)
    for y in range(rbc // 2, h, step):
        for x in range(rbc // 2, w, step):
            cx, cy = x + rng.integers(-3, 4), y + rng.integers(-3, 4)
            if any(abs(cx - a) < rbc * 1.6 and abs(cy - b) < rbc * 1.6 for a, b in wbc):
                continue
            r = rbc / 2
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=RBC)
            draw.ellipse([cx - r / 3, cy - r / 3, cx + r / 3, cy + r / 3], fill=(218, 175, 180))  # central pallor
    for cx, cy in wbc:
        r = rbc * 0.95
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=CYTOPLASM)
        for dx, dy in ((-0.4, -0.2), (0.35, -0.25), (0.0, 0.35)):  # lobes, close enough to merge
            lr = rbc * 0.3
            draw.ellipse([cx + dx * rbc - lr, cy + dy * rbc - lr, cx + dx * rbc + lr, cy + dy * rbc + lr], fill=NUCLEUS)
    rgb = np.asarray(image, dtype=np.float32) * np.asarray(gains, dtype=np.float32)
    if vignette:
        yy, xx = np.mgrid[0:h, 0:w]
        rgb[np.hypot(xx - w / 2, yy - h / 2) > min(w, h) / 2] = 4
    return np.clip(rgb, 0, 255).astype(np.uint8)


def centres_inside(result: Localisation, points) -> list[bool]:
    return [any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in result.boxes) for x, y in points]


def test_one_multilobed_cell_is_one_box_around_it():
    result = locate(field())
    assert len(result.boxes) == 1
    assert centres_inside(result, [(320, 240)]) == [True]
    x0, y0, x1, y1 = result.boxes[0]
    assert 40 <= x1 - x0 <= 160 and 40 <= y1 - y0 <= 160  # about two red cells wide, not the field
    assert result.width == 640 and result.height == 480
    assert len(result.scores) == 1


def test_scale_comes_from_the_red_cells():
    for rbc in (30, 48):
        result = locate(field(rbc=rbc, wbc=((300, 240),)))
        assert result.ruler == "red_cells"
        assert result.px_per_um == pytest.approx(rbc / RBC_DIAMETER_UM, rel=0.25)


def test_two_cells_two_boxes_and_an_empty_field_none():
    two = locate(field(wbc=((160, 140), (470, 330))))
    assert len(two.boxes) == 2
    assert centres_inside(two, [(160, 140), (470, 330)]) == [True, True]
    empty = locate(field(wbc=()))
    assert empty.boxes == []
    assert empty.px_per_um is not None


@pytest.mark.parametrize("gains", [(1.05, 1.0, 0.72), (0.8, 0.92, 1.08)])
def test_colour_casts_and_a_vignette_change_nothing(gains):
    result = locate(field(gains=gains, vignette=True))
    assert len(result.boxes) == 1
    assert centres_inside(result, [(320, 240)]) == [True]


def test_boxes_are_in_the_pixels_of_a_large_photo():
    small = field(size=(400, 300), rbc=25, wbc=((200, 150),))
    big = np.asarray(Image.fromarray(small).resize((2000, 1500), Image.Resampling.BILINEAR))
    result = locate(big)
    assert len(result.boxes) == 1
    assert centres_inside(result, [(1000, 750)]) == [True]
    assert result.px_per_um == pytest.approx(125 / RBC_DIAMETER_UM, rel=0.25)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((480, 640, 3), 255, np.uint8),
        np.full((300, 300), 128, np.uint8),  # grey, 2-D
        np.zeros((5, 7, 3), np.uint8),  # tiny
        np.zeros((1, 1, 3), np.uint8),
        np.random.default_rng(1).integers(0, 256, (64, 64, 4), dtype=np.uint8),  # RGBA noise
        np.random.default_rng(2).random((120, 90, 3)),  # float in [0, 1]
    ],
)
def test_odd_input_never_crashes(image):
    result = locate(image)
    assert isinstance(result, Localisation)
    for x0, y0, x1, y1 in result.boxes:
        assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height


def test_a_pil_image_is_accepted():
    result = locate(Image.fromarray(field()))
    assert len(result.boxes) == 1


def test_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError):
        locate(np.zeros((4, 4, 4, 4), np.uint8))


def test_labelling_matches_a_brute_force_flood_fill():
    rng = np.random.default_rng(3)
    mask = rng.random((40, 50)) < 0.45
    runs = label(mask)
    painted = runs.paint(mask.shape, np.arange(1, runs.count + 1))
    seen = np.zeros(mask.shape, bool)
    count = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        count += 1
        stack, pixels = [(y, x)], []
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            pixels.append((cy, cx))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < 40 and 0 <= nx < 50 and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        assert len({painted[p] for p in pixels}) == 1  # one component keeps one label
    assert runs.count == count
    assert runs.area().sum() == mask.sum()


def test_a_large_pil_image_is_reduced_but_boxes_stay_in_its_pixels():
    small = field(size=(400, 300), rbc=25, wbc=((200, 150),))
    big = Image.fromarray(small).resize((3200, 2400), Image.Resampling.BILINEAR)
    result = locate(big)
    assert big.size == (3200, 2400)  # the caller's image is untouched
    assert (result.width, result.height) == (3200, 2400)
    assert len(result.boxes) == 1
    assert centres_inside(result, [(1600, 1200)]) == [True]
    assert result.px_per_um == pytest.approx(200 / RBC_DIAMETER_UM, rel=0.25)


def test_the_scorer_constants_fit_the_features():
    from hematovision.logic import localiser

    n = len(localiser.FEATURES)
    assert localiser.MODEL_MEAN.shape == localiser.MODEL_SCALE.shape == (n,)
    assert localiser.MODEL_WEIGHTS.shape == (2 * n,)  # the features and their squares
    assert all(len(p) == 5 for p in localiser.PASSES)
    assert localiser.score(np.zeros((0, n))).shape == (0,)
    assert 0.0 <= float(localiser.score(localiser.MODEL_MEAN[None])[0]) <= 1.0


def test_the_field_relative_colours_ignore_a_global_desaturation():
    from hematovision.logic.localiser import FEATURES, FIELD_RELATIVE, _field_relative

    rng = np.random.default_rng(0)
    features = rng.uniform(0.2, 2.0, size=(7, len(FEATURES)))
    _field_relative(features)
    column = {name: features[:, FEATURES.index(name)] for name in FEATURES}
    assert column["rel_chroma"] == pytest.approx(column["chroma"] / column["chroma"].max())
    assert column["rel_dark"] == pytest.approx(column["dark"] / column["dark"].max())
    assert column["blue_vs_median"] == pytest.approx(column["blue_share"] - np.median(column["blue_share"]))
    # a washed-out photo scales every candidate's chroma alike: the ratios stay, the absolute chroma halves
    paler = features.copy()
    paler[:, FEATURES.index("chroma")] *= 0.5
    _field_relative(paler)
    assert paler[:, FEATURES.index("rel_chroma")] == pytest.approx(column["rel_chroma"])
    # every relative column is derived from a column of the candidate's own
    assert all(of in FEATURES and name in FEATURES for name, (of, _) in FIELD_RELATIVE.items())
    # a field of grey candidates (no chroma at all) divides by a floor, not by zero
    grey = np.zeros((3, len(FEATURES)))
    _field_relative(grey)
    assert np.isfinite(grey).all()


@pytest.mark.parametrize("factor", [0.5, 0.35])
def test_a_washed_out_field_keeps_its_cells(factor):
    from PIL import ImageEnhance

    rgb = field(wbc=((160, 140), (470, 330)))
    pale = np.asarray(ImageEnhance.Color(Image.fromarray(rgb)).enhance(factor))
    result = locate(pale)
    assert len(result.boxes) == 2
    assert centres_inside(result, [(160, 140), (470, 330)]) == [True, True]


def test_two_touching_cells_are_two_boxes():
    result = locate(field(wbc=((290, 240), (354, 240))))  # 1.6 red cells apart
    assert len(result.boxes) == 2
    assert centres_inside(result, [(290, 240), (354, 240)]) == [True, True]


def test_a_group_of_two_nucleus_clusters_is_cut_and_one_nucleus_is_not():
    from hematovision.logic.localiser import SPLIT_GAP, _split_cut

    d = 16.0
    low = np.zeros((40, 80), dtype=bool)
    yy, xx = np.mgrid[0:40, 0:80]
    low |= np.hypot(xx - 20, yy - 20) <= 7  # one nucleus ...
    gap = int(SPLIT_GAP * d) + 6
    low |= np.hypot(xx - 20 - gap, yy - 20) <= 7  # ... and another, more than SPLIT_GAP red cells away
    low[19:22, 20 : 20 + gap] = True  # joined by a bridge (as the lobe gap's dilation joins them)
    grouped = label(low)
    assert grouped.count == 1
    cut = _split_cut(grouped, low, np.ones(1, dtype=bool), d)
    assert cut is not None and label(low & ~cut).count == 2
    one = np.hypot(xx - 20, yy - 20) <= 7
    one |= np.hypot(xx - 30, yy - 20) <= 5  # a lobe beside it: one cell
    assert _split_cut(label(one), one, np.ones(1, dtype=bool), d) is None


def on_canvas(image: np.ndarray, k: float, fill=(190, 175, 160)) -> np.ndarray:
    """The image shrunk by k onto a canvas of its own size and one colour, centred (the robustness table's x0.5)."""
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h), fill)
    small = Image.fromarray(image).resize((round(w * k), round(h * k)), Image.Resampling.BILINEAR)
    canvas.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    return np.asarray(canvas)


@pytest.mark.parametrize("k", [0.75, 0.5])
@pytest.mark.parametrize("fill", [(190, 175, 160), BACKGROUND, (150, 120, 130)])
@pytest.mark.parametrize("as_pil", [False, True])
def test_a_photo_shrunk_onto_a_plain_canvas_keeps_its_cell_and_its_scale(k, fill, as_pil):
    """The canvas is not part of the field: its colour (darker than the plasma, like red cells, or the plasma's own)
    must not become red cells, background or field, so the scale follows the photo and the cell is still found, in
    the canvas' pixels."""
    photo = field(rbc=40, wbc=((320, 240),))
    alone = locate(photo)
    padded = on_canvas(photo, k, fill)
    padded = locate(Image.fromarray(padded) if as_pil else padded)
    assert (padded.width, padded.height) == (640, 480)
    assert padded.ruler == "red_cells"
    assert padded.px_per_um == pytest.approx(alone.px_per_um * k, rel=0.15)
    assert centres_inside(padded, [(320, 240)]) == [True]
    assert len(padded.boxes) == 1


def test_a_dark_corner_of_a_padded_photo_is_vignette_not_stain():
    """A rotated photo's black corners touch the canvas, not the image's border: they are still vignette (black
    pixels read as stain would set the red cells' level and lose every cell)."""
    photo = Image.fromarray(field(rbc=40, wbc=((320, 240),))).rotate(8, fillcolor=(0, 0, 0))
    photo = np.asarray(photo)
    padded = locate(on_canvas(photo, 0.5))
    assert padded.ruler == "red_cells"
    assert padded.px_per_um == pytest.approx(locate(photo).px_per_um * 0.5, rel=0.15)
    assert centres_inside(padded, [(320, 240)]) == [True]


def test_a_noisy_field_or_a_flat_synthetic_one_is_not_a_photo_on_a_canvas():
    """A canvas is one exact colour around the photo's box. A camera's noise never gives a large region of equal
    pixels, and a synthetic field's flat plasma runs between its cells: neither is cropped."""
    from hematovision.logic.localiser import _background, _photo_on_canvas

    rng = np.random.default_rng(3)
    noisy = np.clip(field().astype(np.int16) + rng.integers(-2, 3, (480, 640, 3)), 0, 255).astype(np.uint8)
    flat = field()
    for image in (noisy, flat):
        assert _photo_on_canvas(image, _background(image)) is None
    padded = on_canvas(noisy, 0.5)
    box, colours = _photo_on_canvas(padded, _background(padded))
    assert box == (160, 120, 480, 360) and len(colours) == 1  # the photo's box, rim excluded; one canvas colour


@pytest.mark.parametrize("k", [1.5, 2.0, 3.0])
def test_the_scale_follows_an_enlargement(k):
    """The central 1/k of a field enlarged back to full size: k x the red-cell ruler. Enlarging cuts more red cells
    at the image's edge; their distance-transform peaks measure the cut, not the cell, and are left out."""
    image = field(rbc=32, wbc=((300, 240),), seed=3)
    h, w = image.shape[:2]
    cw, ch = round(w / k), round(h / k)
    left, top = (w - cw) // 2, (h - ch) // 2
    window = Image.fromarray(image[top : top + ch, left : left + cw]).resize((w, h), Image.Resampling.BICUBIC)
    original, enlarged = locate(image), locate(np.asarray(window))
    assert original.ruler == enlarged.ruler == "red_cells"
    assert enlarged.px_per_um / original.px_per_um == pytest.approx(k, rel=0.15)


def one_cell_photo(size=(360, 360), nucleus=NUCLEUS, red_cells=False):
    """A white cell filling the photo (a high magnification): its pale cytoplasm, a large dark nucleus off-centre;
    or, with red_cells, a few large red cells and no white cell (an enlarged field whose cell was cut out)."""
    w, h = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    if red_cells:
        for cx, cy in ((80, 90), (250, 110), (150, 260), (320, 300)):
            draw.ellipse([cx - 75, cy - 75, cx + 75, cy + 75], fill=RBC)
        return np.asarray(image)
    draw.ellipse([10, 20, w - 10, h - 5], fill=CYTOPLASM)
    draw.ellipse([70, 60, w - 60, h - 80], fill=nucleus)
    return np.asarray(image)


def test_a_photo_that_is_one_white_cell_gets_one_box_around_its_nucleus():
    """With no red cell around it, no pixel is much darker than the level the nucleus thresholds start from; the
    photo is then one cell (ONE_CELL_*): one box holding the nucleus, the scale a guess from it (ruler "default")."""
    for image in (one_cell_photo(), np.asarray(Image.fromarray(one_cell_photo()).resize((1200, 1200)))):
        result = locate(image)
        assert len(result.boxes) == len(result.scores) == 1
        scale = image.shape[0] / 360
        x0, y0, x1, y1 = result.boxes[0]
        assert x0 <= 70 * scale and y0 <= 60 * scale and x1 >= 300 * scale and y1 >= 280 * scale
        assert result.ruler == "default" and result.red_cell_cover is None
        assert locate(Image.fromarray(image)).boxes == result.boxes


def test_large_red_cells_or_a_pale_blob_are_not_one_white_cell():
    assert locate(one_cell_photo(red_cells=True)).boxes == []
    assert locate(one_cell_photo(nucleus=(200, 170, 215))).boxes == []  # not dark enough for a nucleus


def test_a_photo_whose_candidates_are_all_rejected_may_still_be_one_white_cell(monkeypatch):
    """A cell filling the frame can give nucleus candidates that the scorer rejects (the candidate network never saw a
    nucleus that large): locate then asks _one_cell, as for a photo with no candidate at all."""
    from hematovision.logic import localiser

    image = one_cell_photo()
    expected = locate(image).boxes
    real = localiser._features_and_boxes

    def with_a_candidate(image, find_canvas=True, prepared=None):
        result, _, _, level = real(image, find_canvas, prepared)
        return result, np.array([[100.0, 100.0, 200.0, 200.0]]), localiser.MODEL_MEAN[None].copy(), level

    monkeypatch.setattr(localiser, "_features_and_boxes", with_a_candidate)
    monkeypatch.setattr(localiser, "candidate_scores", lambda copy, boxes, features: np.zeros(len(boxes)))
    assert locate(image).boxes == expected and len(expected) == 1
    monkeypatch.setattr(localiser, "candidate_scores", lambda copy, boxes, features: np.ones(len(boxes)))
    assert locate(image).boxes == [(100, 100, 200, 200)]  # a kept candidate: no fallback


def test_the_nucleus_level_is_the_centre_of_a_flat_top_not_its_highest_bin():
    from hematovision.logic.localiser import DensityCounts, _cell_level

    values = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    counts = np.zeros(256, dtype=np.int64)
    counts[60:180] = 1000  # a flat top from 0.235 to 0.706 ...
    counts[170] += 40  # ... whose highest bin sits near one end
    levels = DensityCounts.of(values, counts)
    mode = _cell_level(levels, 75.0, 0.3)
    centre = _cell_level(levels, 75.0, 0.3, plateau=0.8)
    assert mode > 0.6
    assert 0.4 < centre < 0.55


@pytest.mark.parametrize("size", [(4000, 3000), (2000, 1500)])
def test_the_example_field_as_a_large_photo_keeps_both_cells(size):
    # the README's example field enlarged (a 12 MP photo's path: Pillow's reduce, then the resize): the nucleus level
    # once jumped across the histogram's flat top and lost the second cell
    field = Image.open(Path(__file__).resolve().parents[2] / "events" / "field.jpg").convert("RGB")
    native = locate(field)
    large = locate(field.resize(size, Image.Resampling.BICUBIC))
    k = size[0] / field.width
    assert len(native.boxes) == len(large.boxes) == 2
    for a, b in zip(sorted(native.boxes), sorted(large.boxes), strict=True):
        assert np.allclose(np.asarray(b) / k, a, atol=0.15 * (a[2] - a[0]))
