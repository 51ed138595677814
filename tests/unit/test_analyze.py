"""POST /v1/analyze and the classify flags, with the random-weights model and a stand-in localiser.

The stand-in returns fixed boxes in the pixels of the image it is given, so these tests hold the analysis logic
(framing, mapping back to the original's pixels, the cap, the counts, the flags) whatever the real localiser does.
"""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from hematovision.errors import ClientError
from hematovision.limits import MAX_ANALYZE_CELLS
from hematovision.logic import analysis as analysis_module
from hematovision.logic import classifier as classifier_module
from hematovision.logic.analysis import FRAME_BOXES, FRAME_UM, Analyzer, crop_cell, frame_size
from hematovision.logic.annotate import ANNOTATED_LONG_SIDE, annotated_png, encode_png
from hematovision.logic.cell_crop import isotropic
from hematovision.logic.classifier import Classifier, Upload
from hematovision.logic.evaluation import evaluate_files
from hematovision.logic.inference import Model
from hematovision.logic.localiser import Localisation
from hematovision.logic.verdict import MULTIPLE_CELLS, NO_CELL
from tests import fakes


class FakeLocaliser:
    """Boxes given as fractions of the image's size, so they land on the same spot at any decode scale."""

    def __init__(self, fractions, px_per_um=None, ruler="red_cells"):
        self.fractions = fractions
        self.px_per_um = px_per_um
        self.ruler = ruler
        self.seen = []

    def __call__(self, image):
        self.seen.append(image.size)
        w, h = image.size
        boxes = [(round(a * w), round(b * h), round(c * w), round(d * h)) for a, b, c, d in self.fractions]
        ppu = None if self.px_per_um is None else self.px_per_um * w  # px_per_um given per pixel of width
        return Localisation(boxes=boxes, scores=[0.9] * len(boxes), px_per_um=ppu, ruler=self.ruler, width=w, height=h)


@pytest.fixture(scope="module")
def classifier(fake_model_dir):
    return Classifier(Model(fake_model_dir))


def png(width, height, seed=0) -> bytes:
    return fakes.synthetic_cell(width=width, height=height, seed=seed, fmt="PNG")


# ---------------------------------------------------------------- framing
def test_frame_size_is_a_bccd_field_of_view_or_a_multiple_of_the_box():
    width, height = frame_size((0, 0, 10, 10), 13.5)
    assert (width, height) == pytest.approx((640, 480), rel=1e-3)  # bccd's own scale: the bccd field
    assert frame_size((0, 0, 10, 10), 27.0) == pytest.approx((FRAME_UM[0] * 27, FRAME_UM[1] * 27))
    assert frame_size((0, 0, 100, 60), None) == pytest.approx((FRAME_BOXES * 100, FRAME_BOXES * 75))


def test_crop_inside_the_photo_is_the_frame_resized():
    image = Image.open(io.BytesIO(png(1200, 900)))
    box = (500, 400, 600, 500)
    crop = crop_cell(image, box, 13.5 / 2, 224, (255, 255, 255))  # frame 320x240 around the box centre
    expected = np.asarray(image.resize((224, 224), Image.Resampling.BILINEAR, box=(390, 330, 710, 570)))
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1


def test_crop_near_the_border_moves_inside_and_a_small_photo_is_padded():
    image = Image.open(io.BytesIO(png(1200, 900)))
    at_corner = crop_cell(image, (0, 0, 40, 40), 13.5 / 2, 224, (0, 0, 0))
    inside = np.asarray(image.resize((224, 224), Image.Resampling.BILINEAR, box=(0, 0, 320, 240)))
    assert np.abs(at_corner.astype(int) - inside.astype(int)).max() <= 1  # no padding: the frame stays in the photo
    small = Image.new("RGB", (100, 100), (10, 20, 30))
    padded = crop_cell(small, (40, 40, 60, 60), None, 224, (200, 100, 50))  # frame 80x60: inside the photo
    assert (padded == (10, 20, 30)).all()
    tiny = crop_cell(small, (0, 0, 100, 100), None, 224, (200, 100, 50))  # frame 300x225 > the photo: padded
    assert tuple(tiny[0, 0]) == (200, 100, 50) and tuple(tiny[112, 112]) == (10, 20, 30)


def test_isotropic_undoes_a_per_axis_reduction():
    image = Image.new("RGB", (1300, 1000))  # as a 2600x1000 PNG box-reduced (2, 1)
    fixed, sx, sy = isotropic(image, 2600, 1000)
    assert fixed.size == (1300, 500) and sx == pytest.approx(2) and sy == pytest.approx(2)


# ---------------------------------------------------------------- the use case
def test_boxes_come_back_in_the_upright_originals_pixels(classifier):
    localiser = FakeLocaliser([(0.1, 0.2, 0.2, 0.4), (0.6, 0.5, 0.7, 0.7)])
    result = Analyzer(classifier, localiser).analyze(Upload(data=png(2600, 1000), filename="wide.png"))
    assert localiser.seen == [(1300, 500)]  # decoded reduced, then made isotropic
    assert (result.width, result.height, result.filename) == (2600, 1000, "wide.png")
    assert [c.box for c in result.cells] == [(260, 200, 520, 400), (1560, 500, 1820, 700)]
    assert sum(result.counts.values()) == 2 and set(result.counts) == set(fakes.CLASSES)
    assert result.ruler == "red_cells" and result.note is None and not result.truncated


def test_the_scale_is_in_the_originals_pixels(classifier):
    localiser = FakeLocaliser([(0.1, 0.1, 0.2, 0.2)], px_per_um=0.01)  # 13 px/um at the decoded 1300 px
    result = Analyzer(classifier, localiser).analyze(png(2600, 1000))
    assert result.px_per_um == pytest.approx(26.0)


def test_exif_rotation_boxes_are_upright(classifier):
    """A JPEG stored landscape with EXIF orientation 6 (rotate 90): the localiser sees and answers upright."""
    image = Image.open(io.BytesIO(fakes.synthetic_cell(width=400, height=300)))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    localiser = FakeLocaliser([(0.0, 0.0, 0.5, 0.25)])
    result = Analyzer(classifier, localiser).analyze(buffer.getvalue())
    assert localiser.seen == [(300, 400)] and (result.width, result.height) == (300, 400)
    assert result.cells[0].box == (0, 0, 150, 100)


def test_the_cap_cuts_the_list_not_the_counts(classifier):
    fractions = [
        (i / 100, j / 100, i / 100 + 0.01, j / 100 + 0.01) for i in range(0, 100, 10) for j in range(0, 90, 10)
    ]
    result = Analyzer(classifier, FakeLocaliser(fractions)).analyze(png(640, 480))
    assert len(result.cells) == 90 > MAX_ANALYZE_CELLS
    assert result.truncated and len(result.listed) == MAX_ANALYZE_CELLS
    assert sum(result.counts.values()) == 90
    centres = [((c.box[1] + c.box[3]) / 2, (c.box[0] + c.box[2]) / 2) for c in result.cells]
    assert centres == sorted(centres)  # reading order


def test_no_cell_is_an_empty_answer_with_a_note(classifier):
    result = Analyzer(classifier, FakeLocaliser([], ruler="default")).analyze(png(320, 240))
    assert result.cells == [] and result.note and set(result.counts.values()) == {0}
    assert result.inference_ms == 0.0


def test_one_batched_call_for_all_crops(classifier, monkeypatch):
    calls = []
    original = classifier.model.predict

    def counting(batch, with_cam=False):
        calls.append(batch.shape[0])
        return original(batch, with_cam=with_cam)

    monkeypatch.setattr(classifier.model, "predict", counting)
    Analyzer(classifier, FakeLocaliser([(0.1, 0.1, 0.2, 0.2)] * 5)).analyze(png(640, 480))
    assert calls == [5]


def test_bad_uploads_raise_the_classify_errors(classifier):
    analyzer = Analyzer(classifier, FakeLocaliser([]))
    for data, status, code in (
        (b"", 400, "empty_image"),
        (b"not an image at all", 415, "unsupported_image"),
        (png(8, 8), 422, "image_too_small"),
        (fakes.synthetic_cell()[:300], 422, "corrupt_image"),
    ):
        with pytest.raises(ClientError) as caught:
            analyzer.analyze(data)
        assert (caught.value.status, caught.value.code) == (status, code)


# ---------------------------------------------------------------- annotated photo
def test_annotated_png_is_small_and_at_most_1024(classifier):
    result = Analyzer(classifier, FakeLocaliser([(0.1, 0.1, 0.3, 0.3), (0.5, 0.5, 0.7, 0.8)])).analyze(png(3000, 2000))
    annotated = annotated_png(result)
    data = base64.b64decode(annotated["data"])
    shown = Image.open(io.BytesIO(data))
    assert shown.format == "PNG" and max(shown.size) <= ANNOTATED_LONG_SIDE and len(data) <= 1024 * 1024
    assert (annotated["width"], annotated["height"]) == shown.size == (1024, 683)


def test_a_noisy_photo_still_fits_the_byte_cap():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    assert len(encode_png(noise, max_bytes=300_000)) <= 300_000


# ---------------------------------------------------------------- classify flags
@pytest.mark.parametrize(("boxes", "reason"), [(2, MULTIPLE_CELLS), (0, NO_CELL), (1, None)])
def test_classify_flags_fields(classifier, monkeypatch, boxes, reason):
    monkeypatch.setattr(
        classifier_module, "locate", lambda image: Localisation(boxes=[(0, 0, 10, 10)] * boxes, scores=[1.0] * boxes)
    )
    (item,) = classifier.classify([fakes.synthetic_cell()]).items
    if reason is None:
        assert MULTIPLE_CELLS not in item.verdict.uncertain_reasons and NO_CELL not in item.verdict.uncertain_reasons
    else:
        assert item.verdict.uncertain and item.verdict.uncertain_reasons[-1] == reason
        assert "/v1/analyze" in item.verdict.description
    assert item.cells_found == boxes


def test_a_localiser_fault_leaves_classify_unflagged(classifier, monkeypatch):
    def broken(image):
        raise ValueError("localiser bug")

    monkeypatch.setattr(classifier_module, "locate", broken)
    (item,) = classifier.classify([fakes.synthetic_cell()]).items
    assert item.ok and item.cells_found is None
    assert not {MULTIPLE_CELLS, NO_CELL} & set(item.verdict.uncertain_reasons)


def test_evaluation_measures_the_model_alone(classifier, monkeypatch, tmp_path):
    monkeypatch.setattr(classifier_module, "locate", lambda image: Localisation(boxes=[]))
    path = tmp_path / "a.jpg"
    path.write_bytes(fakes.synthetic_cell())
    with_flags = classifier.classify([path.read_bytes()]).items[0].verdict
    assert NO_CELL in with_flags.uncertain_reasons
    alone = classifier.classify([path.read_bytes()], localise=False).items[0].verdict
    assert NO_CELL not in alone.uncertain_reasons
    metrics = evaluate_files(classifier, [path], [0])
    assert metrics["n"] == 1 and metrics["uncertain_fraction"] == float(alone.uncertain)


# ---------------------------------------------------------------- through the handler
@pytest.fixture
def fake_localiser(api, monkeypatch):
    localiser = FakeLocaliser([(0.05, 0.45, 0.3, 0.9), (0.37, 0.5, 0.8, 0.98)])
    monkeypatch.setattr(api.ANALYZER, "localiser", localiser)
    return localiser


def invoke(api, event, context):
    response = api.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("name", ["analyze-raw-jpeg", "analyze-json", "analyze-multipart"])
def test_analyze_upload_forms(api, context, load_event, fake_localiser, name):
    status, body = invoke(api, load_event(name), context)
    assert status == 200, body
    assert (body["width"], body["height"], body["cell_count"], body["truncated"]) == (640, 480, 2, False)
    assert [c["box"] for c in body["cells"]] == [[32, 216, 192, 432], [237, 240, 512, 470]]
    for cell in body["cells"]:
        assert set(cell) == {"box", "label", "confidence", "probabilities", "uncertain", "uncertain_reasons"}
        assert set(cell["probabilities"]) == set(fakes.CLASSES)
    assert sum(body["counts"].values()) == 2 and body["annotated"] is None and body["note"] is None
    assert body["model"]["version"] == "0.0.0-random" and "not a diagnosis" in body["disclaimer"]
    assert set(body["timings"]) == {"decode_ms", "locate_ms", "inference_ms", "total_ms"}
    if name == "analyze-json":
        assert body["filename"] == "field.jpg"


def test_analyze_annotate(api, context, load_event, fake_localiser):
    status, body = invoke(api, load_event("analyze-raw-jpeg-annotate"), context)
    assert status == 200
    shown = Image.open(io.BytesIO(base64.b64decode(body["annotated"]["data"])))
    assert shown.size == (640, 480) == (body["annotated"]["width"], body["annotated"]["height"])


def test_analyze_errors_are_the_classify_errors(api, context, load_event, fake_localiser):
    for analyze_name, classify_name in (
        ("analyze-text-plain", "classify-text-plain"),
        ("analyze-raw-jpeg", "classify-missing-body"),
        ("analyze-raw-jpeg", "classify-truncated-jpeg"),
        ("analyze-raw-jpeg", "classify-malformed-json"),
    ):
        event = load_event(analyze_name)
        reference = load_event(classify_name)
        for key in ("body", "isBase64Encoded", "headers", "multiValueHeaders"):
            event[key] = reference[key]
        a_status, a_body = invoke(api, event, context)
        c_status, c_body = invoke(api, reference, context)
        assert (a_status, a_body["error"]) == (c_status, c_body["error"]) and 400 <= a_status < 500


def test_analyze_bad_annotate_value_is_a_400(api, context, load_event, fake_localiser):
    event = load_event("analyze-raw-jpeg")
    event["queryStringParameters"] = {"annotate": "perhaps"}
    event["multiValueQueryStringParameters"] = {"annotate": ["perhaps"]}
    status, body = invoke(api, event, context)
    assert status == 400 and body["error"]["code"] == "invalid_request"


def test_openapi_and_index_name_the_route(api, context, load_event):
    _, document = invoke(api, load_event("openapi"), context)
    operation = document["paths"]["/v1/analyze"]["post"]
    assert operation["security"] == [{"apiKey": []}] and "whole field" in operation["description"]
    assert set(operation["requestBody"]["content"]) >= {"image/jpeg", "application/json", "multipart/form-data"}
    assert {"400", "413", "415", "422"} <= set(operation["responses"])
    assert "ONE white cell" in document["paths"]["/v1/classify"]["post"]["description"]
    _, index = invoke(api, load_event("root"), context)
    assert index["endpoints"]["analyze"] == "POST /v1/analyze"


def test_analysis_module_uses_only_the_localisers_public_api():
    source = analysis_module.__loader__.get_source(analysis_module.__name__)
    assert "localiser import locate" in source and "localiser._" not in source
