"""The cell-crop serving path with the real ONNX model: the committed 1.2.0 model under a copy of its card that says
crop == "cell" (28 um, this localiser), through the Lambda handler and the CLI.

A plumbing test, not an accuracy claim: 1.2.0 learned whole frames, so its labels on crops mean nothing here. What is
checked: the answers say crop "cell" with the red-cell ruler, and the model's input is exactly logic/cell_crop's crop
of the decoded photo (the frame where no cell is found); /v1/analyze crops through crop_cells.

Skipped locally while the committed model or ../shared/data is absent; with CI=true that fails.
"""

import importlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hematovision import cli
from hematovision.local.events import build_event
from hematovision.logic import analysis as analysis_module
from hematovision.logic.cell_crop import crop_cells, frame_input, model_input
from hematovision.logic.localiser import LOCALISER_VERSION, locate
from hematovision.logic.preprocessing import decode_image
from tests import fakes
from tests.integration.serve_helpers import REAL_MODEL_DIR, SHARED_DATA, require

CROP_UM = 28.0
NEUTROPHIL = SHARED_DATA / "bccd" / "TEST_SIMPLE" / "NEUTROPHIL"
TWO_CELL_FIELD = SHARED_DATA / "fields" / "bccd" / "images" / "BloodImage_00010.jpg"


@pytest.fixture(scope="module")
def cell_model_dir(tmp_path_factory):
    require((REAL_MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    require(NEUTROPHIL.is_dir(), f"shared data not found at {NEUTROPHIL}")
    require(TWO_CELL_FIELD.is_file(), f"shared fields not found at {TWO_CELL_FIELD}")
    directory = tmp_path_factory.mktemp("cell-card")
    shutil.copy(REAL_MODEL_DIR / "hematovision.onnx", directory / "hematovision.onnx")
    card = json.loads((REAL_MODEL_DIR / "model_card.json").read_text())
    assert "crop" not in card["input"]  # the committed card is a frame model's: this copy is the only cell card
    card["input"].update(crop="cell", crop_um=CROP_UM)
    card["localiser"] = {"version": LOCALISER_VERSION}
    (directory / "model_card.json").write_text(json.dumps(card))
    return directory


@pytest.fixture(scope="module")
def handler(cell_model_dir):
    """hematovision.handlers.api loaded with the cell card; afterwards reloaded as it was."""
    loader = fakes.load_handler_module(cell_model_dir)
    module = next(loader)
    yield module
    next(loader, None)
    importlib.reload(module)


@pytest.fixture
def model_inputs(handler, monkeypatch):
    """The batches the model classifies (the real predict still answers)."""
    return fakes.record_model_inputs(handler.MODEL, monkeypatch)


def post(handler, context, path: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    event = build_event(
        "POST", path, path, headers=[("Content-Type", content_type)], body=data, binary=True, api_key="k"
    )
    response = handler.lambda_handler(event, context)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def test_a_bccd_frame_is_classified_on_its_cell_crop(handler, model_inputs, context):
    data = sorted(NEUTROPHIL.iterdir())[0].read_bytes()
    answer = post(handler, context, "/v1/classify", data)
    assert (answer["crop"], answer["crop_ruler"]) == ("cell", "red_cells")
    image = decode_image(data)
    expected = model_input(image, locate(image), CROP_UM, handler.MODEL.input_size)
    assert len(model_inputs) == 1 and np.array_equal(model_inputs[0][0], expected.pixels)


def test_a_field_is_classified_on_its_best_cell_and_flagged(handler, model_inputs, context):
    data = TWO_CELL_FIELD.read_bytes()
    answer = post(handler, context, "/v1/classify", data)
    assert (answer["crop"], answer["crop_ruler"]) == ("cell", "red_cells")
    assert "multiple_cells" in answer["uncertain_reasons"]
    image = decode_image(data)
    where = locate(image)
    assert len(where.boxes) == 2
    expected = model_input(image, where, CROP_UM, handler.MODEL.input_size)
    assert np.array_equal(model_inputs[0][0], expected.pixels)


def test_a_blank_photo_is_classified_on_the_frame(handler, model_inputs, context):
    blank = Image.new("RGB", (640, 480), (236, 205, 210))
    buffer = io.BytesIO()
    blank.save(buffer, format="PNG")
    answer = post(handler, context, "/v1/classify", buffer.getvalue(), "image/png")
    assert (answer["crop"], answer["crop_ruler"]) == ("frame", "none")
    assert "no_cell" in answer["uncertain_reasons"]
    assert np.array_equal(model_inputs[0][0], frame_input(blank, handler.MODEL.input_size))


def test_analyze_classifies_each_cells_crop(handler, model_inputs, context, monkeypatch):
    calls = []
    monkeypatch.setattr(analysis_module, "crop_cells", lambda *a, **k: calls.append(a) or crop_cells(*a, **k))
    data = TWO_CELL_FIELD.read_bytes()
    answer = post(handler, context, "/v1/analyze", data)
    assert answer["cell_count"] == 2 and len(calls) == 1
    image = decode_image(data)
    crops = crop_cells(image, locate(image), CROP_UM, handler.MODEL.input_size)
    by_box = {crop.box: crop.pixels for crop in crops}
    expected = np.stack([by_box[tuple(cell["box"])] for cell in answer["cells"]])  # a 640x480 field: boxes as found
    assert np.array_equal(model_inputs[0], expected)


def test_the_cli_says_which_crop(cell_model_dir, capsys):
    path = sorted(NEUTROPHIL.iterdir())[0]
    assert cli.main(["classify", str(path), "--json", "--model-dir", str(cell_model_dir)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["crop"], line["crop_ruler"]) == ("cell", "red_cells")
