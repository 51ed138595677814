"""POST /v1/analyze and the classify flags with the committed model and the real localiser, on real fields from
../shared/data/fields (through the handler and through `hematovision serve`). Skipped locally while the committed
model or the shared data is absent; with CI=true that fails (require()).

Boxes are compared with the annotations by the issue's rule: a found box and a true box match when each one's
centre lies inside the other.
"""

import base64
import csv
import io
import json

import pytest
from PIL import Image

from hematovision.local.events import build_event
from hematovision.local.template import load_api_config
from tests import fakes
from tests.integration.serve_helpers import API_KEY, REAL_MODEL_DIR, ROOT, SHARED_DATA, require, serving

FIELDS = SHARED_DATA / "fields" / "bccd"
TWO_CELLS = "BloodImage_00010.jpg"  # two white cells (fields/bccd/boxes.csv); also events/field.jpg
TEST_SIMPLE = SHARED_DATA / "bccd" / "TEST_SIMPLE"


def true_boxes(name: str) -> list[tuple[int, int, int, int]]:
    with open(FIELDS / "boxes.csv", newline="") as handle:
        return [
            tuple(int(float(row[k])) for k in ("xmin", "ymin", "xmax", "ymax"))
            for row in csv.DictReader(handle)
            if row["label"] == "WBC" and row["image"].endswith(name)
        ]


def centre_in(inner, outer) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def matched(found, truth) -> bool:
    """One to one: every true box has exactly one found box and vice versa (centre in box both ways)."""
    pairs = [(f, t) for f in found for t in truth if centre_in(f, t) and centre_in(t, f)]
    return len(found) == len(truth) == len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


@pytest.fixture(scope="module")
def real_api():
    require((REAL_MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    require((FIELDS / "images" / TWO_CELLS).is_file(), f"shared fields not found at {FIELDS}")
    loader = fakes.load_handler_module(REAL_MODEL_DIR)
    module = next(loader)
    yield module
    next(loader, None)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    require((REAL_MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    require((FIELDS / "images" / TWO_CELLS).is_file(), f"shared fields not found at {FIELDS}")
    yield from serving(tmp_path_factory, REAL_MODEL_DIR, workers=1)


def call(api, context, path, body, content_type="image/jpeg", query=()):
    config = load_api_config(ROOT / "template.yaml")
    event = build_event(
        "POST",
        path,
        path,
        headers=[("Content-Type", content_type), ("x-api-key", API_KEY)],
        query=list(query),
        body=body,
        binary=config.is_binary(content_type),
        api_key=API_KEY,
    )
    response = api.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def field_bytes(name: str = TWO_CELLS) -> bytes:
    return (FIELDS / "images" / name).read_bytes()


def test_a_two_cell_field_gives_two_boxes_and_counts(real_api, context):
    status, body = call(real_api, context, "/v1/analyze", field_bytes(), query=[("annotate", "true")])
    assert status == 200, body
    assert matched([tuple(c["box"]) for c in body["cells"]], true_boxes(TWO_CELLS)), body["cells"]
    assert body["cell_count"] == sum(body["counts"].values()) == 2 and not body["truncated"]
    assert body["ruler"] == "red_cells" and 8 < body["px_per_um"] < 20
    png = base64.b64decode(body["annotated"]["data"])
    assert len(png) <= 1024 * 1024 and Image.open(io.BytesIO(png)).size == (640, 480)


def test_classify_flags_the_same_field(real_api, context):
    status, body = call(real_api, context, "/v1/classify", field_bytes())
    assert status == 200 and body["uncertain"] and "multiple_cells" in body["uncertain_reasons"]
    assert "/v1/analyze" in body["description"]
    status, batch = call(
        real_api,
        context,
        "/v1/classify/batch",
        json.dumps({"images": [base64.b64encode(field_bytes()).decode()]}).encode(),
        "application/json",
    )
    assert batch["results"][0]["result"]["uncertain_reasons"] == body["uncertain_reasons"]


def test_a_single_cell_frame_is_not_flagged_by_the_localiser(real_api, context):
    require(TEST_SIMPLE.is_dir(), f"shared data not found at {TEST_SIMPLE}")
    path = sorted((TEST_SIMPLE / "NEUTROPHIL").iterdir())[0]
    status, body = call(real_api, context, "/v1/classify", path.read_bytes())
    assert status == 200 and not {"multiple_cells", "no_cell"} & set(body["uncertain_reasons"])


def test_a_large_rotated_phone_photo_has_upright_boxes(real_api, context):
    """The field at 4000x3000 (12 MP), stored turned with EXIF orientation 8 (rotate 90): the same boxes, in the
    upright 4000x3000 photo's pixels, as the same photo stored upright; the scale in the original's pixels."""
    upright = Image.open(io.BytesIO(field_bytes())).resize((4000, 3000), Image.Resampling.BICUBIC)
    answers = []
    for image, orientation in ((upright, None), (upright.transpose(Image.Transpose.ROTATE_270), 8)):
        buffer = io.BytesIO()
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        image.save(buffer, format="JPEG", quality=90, exif=exif)
        status, body = call(real_api, context, "/v1/analyze", buffer.getvalue(), query=[("annotate", "true")])
        assert status == 200, body
        assert (body["width"], body["height"]) == (4000, 3000)
        assert (body["annotated"]["width"], body["annotated"]["height"]) == (1024, 768)
        answers.append(body)
    assert answers[0]["cells"], "no white cell found on the 12 MP field"
    assert matched([tuple(c["box"]) for c in answers[1]["cells"]], [tuple(c["box"]) for c in answers[0]["cells"]])
    # the field's scale (bccd ~ 12-15 px/um at 640 px) x 6.25
    assert 6.25 * 9 < answers[0]["px_per_um"] < 6.25 * 18, answers[0]["px_per_um"]


def test_no_white_cell_is_a_200_with_a_note(real_api, context):
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (236, 205, 210)).save(blank, format="PNG")
    status, body = call(real_api, context, "/v1/analyze", blank.getvalue(), "image/png")
    assert status == 200 and body["cells"] == [] and body["note"] and set(body["counts"].values()) == {0}


def test_through_serve_the_answer_is_the_handlers(real_api, context, real_server):
    _, direct = call(real_api, context, "/v1/analyze", field_bytes())
    status, served = real_server.json("POST", "/v1/analyze", field_bytes(), {"Content-Type": "image/jpeg"})
    assert status == 200, served
    assert [c["box"] for c in served["cells"]] == [c["box"] for c in direct["cells"]]
    assert served["counts"] == direct["counts"]
    content_type, body = fakes.encode_multipart([("image", TWO_CELLS, "image/jpeg", field_bytes())])
    status, multipart = real_server.json("POST", "/v1/analyze", body, {"Content-Type": content_type})
    assert status == 200 and multipart["filename"] == TWO_CELLS and multipart["counts"] == direct["counts"]
    status, refused = real_server.json("POST", "/v1/analyze", field_bytes(), {"Content-Type": "image/jpeg"}, key=None)
    assert status == 403, refused
