"""The localiser's eyepiece pass: the circle fit, and a second candidate pass only inside an eyepiece's circle."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hematovision.logic import localiser as L


def disc(size, centre, radius):
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(xx - centre[0], yy - centre[1]) <= radius


@pytest.mark.parametrize(
    "size,centre,radius",
    [((400, 400), (200, 200), 150), ((300, 400), (200, 150), 140), ((400, 400), (200, 200), 210)],
)
def test_a_circle_is_found_inside_or_cut_by_the_frame(size, centre, radius):
    got = L._eyepiece_diameter(disc(size, centre, radius))
    assert got is not None and abs(got - 2 * radius) <= 0.02 * 2 * radius


def letterbox():
    valid = np.ones((300, 400), dtype=bool)
    valid[:40] = valid[-40:] = False
    return valid


def rotated_crop():
    """The black corners of a crop rotated by 20 degrees (bccd's augmented images hold such corners)."""
    image = Image.new("L", (320, 240), 0)
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    corners = [
        (x * c - y * s + 160, x * s + y * c + 120) for x, y in ((-170, -120), (170, -120), (170, 120), (-170, 120))
    ]
    ImageDraw.Draw(image).polygon(corners, fill=255)
    return np.asarray(image) > 0


def shifted_crop():
    valid = np.ones((240, 320), dtype=bool)
    valid[:30] = False
    valid[:, 290:] = False
    return valid


@pytest.mark.parametrize(
    "valid", [letterbox(), rotated_crop(), shifted_crop()], ids=["letterbox", "rotated", "shifted"]
)
def test_straight_edges_are_no_eyepiece(valid):
    assert L._eyepiece_diameter(valid) is None


def packed_field(size=416, rbc=12, wbc=((150, 130), (260, 290)), circle=True):
    """Two bands of touching red cells (the distance transform sees each band as one mass: a red cell as wide as the
    band), with white cells in them (dark nuclei about 1.3 red cells across), inside a black eyepiece circle."""
    image = Image.new("RGB", (size, size), (235, 225, 228))
    draw = ImageDraw.Draw(image)
    r = rbc / 2
    for top in (80, 240):
        for row, y in enumerate(np.arange(top, top + 100, rbc * 0.7)):
            for x in np.arange((row % 2) * r, size, rbc * 0.8):
                if any(math.hypot(x - a, y - b) < rbc * 1.3 for a, b in wbc):
                    continue
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(225, 185, 210), outline=(170, 100, 160), width=2)
    for x, y in wbc:
        draw.ellipse([x - rbc, y - rbc, x + rbc, y + rbc], fill=(215, 190, 215))
        draw.ellipse([x - 0.65 * rbc, y - 0.65 * rbc, x + 0.65 * rbc, y + 0.65 * rbc], fill=(90, 50, 140))
    rgb = np.asarray(image).copy()
    if circle:
        rgb[~disc((size, size), (size / 2, size / 2), size / 2 - 4)] = 5
    return rgb


def count_passes(monkeypatch, image):
    calls = []
    inner = L._candidates

    def counting(*args):
        calls.append(args[6])  # the red-cell diameter of the pass
        return inner(*args)

    monkeypatch.setattr(L, "_candidates", counting)
    found = L.locate(image)
    return calls, found


def test_no_second_pass_without_an_eyepiece_circle(monkeypatch):
    image = packed_field(circle=False)
    image[:40] = 5  # a letterbox: a vignette, but no circle
    calls, _ = count_passes(monkeypatch, image)
    assert len(calls) == 1


def assert_both_white_cells_found(found):
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in found.boxes]
    for x, y in ((150, 130), (260, 290)):
        assert any(abs(cx - x) <= 8 and abs(cy - y) <= 8 for cx, cy in centres), (x, y, found.boxes)


def test_touching_red_cells_in_an_eyepiece_get_a_pass_at_the_bound(monkeypatch):
    image = packed_field()
    with monkeypatch.context() as without:
        without.setattr(L, "EYEPIECE_NUCLEUS", 0.0)  # no nucleus ruler: one pass at the estimate
        calls, found = count_passes(without, image)
        assert len(calls) == 1 and found.boxes == []  # the estimate (the bands' width) puts the nuclei under the bound
    # the texture test passed (these bands are smooth; real packed cells are not: tune split), the pass at the bound
    # finds both white cells
    monkeypatch.setattr(L, "EYEPIECE_DOG", 0.0)
    calls, found = count_passes(monkeypatch, image)
    assert len(calls) == 2 and calls[1] < calls[0] / 2
    assert_both_white_cells_found(found)


def test_touching_red_cells_in_an_eyepiece_get_a_pass_at_the_nucleus_ruler(monkeypatch):
    """The texture test fails (as on real phone photos of red cells in bands): the second pass runs at the red-cell
    diameter the largest nucleus implies, within the eyepiece's bound, and finds both white cells."""
    calls, found = count_passes(monkeypatch, packed_field())
    circle = L._eyepiece_diameter(~L._vignette(packed_field(), L._background(packed_field())))
    assert len(calls) == 2 and calls[1] <= L.EYEPIECE_RBC * circle and calls[1] < L.EYEPIECE_NUCLEUS * calls[0]
    assert_both_white_cells_found(found)


def test_the_texture_test_prefers_the_red_cells_size():
    """Small discs apart on a plain background: the difference of Gaussians tuned to their size carries more energy
    than one tuned to three times it."""
    rng = np.random.default_rng(0)
    plane = np.zeros((300, 300), dtype=np.float32)
    yy, xx = np.mgrid[0:300, 0:300]
    for x, y in rng.uniform(10, 290, (150, 2)):
        plane[np.hypot(xx - x, yy - y) <= 6] = 0.5
    valid = np.ones_like(plane, dtype=bool)
    assert L._dog_energy(plane, valid, 12, 0.6) > L._dog_energy(plane, valid, 36, 0.6)


def test_the_circle_fit_uses_np_median_arithmetic():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 6, 999, 1000):
        values = rng.random(n) * 100
        assert L._median_of_floats(values) == float(np.median(values))


def test_a_cold_first_locate_does_not_import_numpy_ma():
    """np.median on floats imports numpy.ma on its first call (30-80 ms of a cold start's first answer). The circle
    fit runs on every photo with a vignette, bccd's black rotation corners included, so it must not pay that."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from hematovision.logic.localiser import locate\n"
        "from tests.unit.test_localiser_eyepiece import corners_field\n"
        "locate(corners_field())\n"
        "assert 'numpy.ma' not in sys.modules, 'numpy.ma imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def corners_field():
    """A field with black corners, as bccd's rotated crops have them: the circle fit runs and rejects them."""
    rgb = packed_field(circle=False)[:240, :320].copy()
    rgb[~rotated_crop()] = 5
    return rgb
