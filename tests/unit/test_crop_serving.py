"""A model whose card says crop == "cell" (model 2.0's input) is served on logic/cell_crop's crops; the card's crop
fields are checked at load. The stand-in model (random weights) only carries the plumbing: no label is asserted."""

import base64
import importlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.data import Sample
from export.recipe import Recipe
from export.train import cell_input
from hematovision.logic import analysis as analysis_module
from hematovision.logic import classifier as classifier_module
from hematovision.logic.analysis import Analyzer
from hematovision.logic.cell_crop import DECODE_SIZE, crop_cells, frame_input, model_input
from hematovision.logic.classifier import Classifier, Upload
from hematovision.logic.inference import Model, ModelLoadError
from hematovision.logic.localiser import LOCALISER_VERSION, Localisation
from hematovision.logic.preprocessing import decode_image
from tests import fakes
from tests.ci import require


def cell_card(model_dir, **changes) -> dict:
    """The stand-in's card, saying crop == "cell" (28 um, this localiser); `changes`: input keys to override (None
    removes one), or localiser=... for the localiser block."""
    card = json.loads((model_dir / "model_card.json").read_text())
    card["input"].update(crop="cell", crop_um=28.0)
    card["localiser"] = changes.pop("localiser", {"version": LOCALISER_VERSION})
    for key, value in changes.items():
        if value is None:
            card["input"].pop(key, None)
        else:
            card["input"][key] = value
    return card


def test_a_card_without_crop_is_a_frame_model(fake_model_dir):
    model = Model(fake_model_dir)
    assert (model.crop, model.crop_um) == ("frame", None)


def test_a_cell_card_is_read(fake_model_dir):
    model = Model(fake_model_dir, card=cell_card(fake_model_dir))
    assert (model.crop, model.crop_um) == ("cell", 28.0)


def test_a_crop_trained_card_without_the_crop_contract_is_refused(fake_model_dir):
    """Served on frames, a model trained on crops would answer confidently wrong: its card must say crop."""
    card = cell_card(fake_model_dir, crop=None, crop_um=None)
    card["training"] = {"crop": "cell-centred square of 28 um (logic/cell_crop.py)"}
    with pytest.raises(ModelLoadError, match="describes cell crops"):
        Model(fake_model_dir, card=card)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop_um": None}, "without a positive crop_um"),
        ({"crop_um": 0}, "without a positive crop_um"),
        ({"crop_um": "28"}, "without a positive crop_um"),
        ({"crop": "nucleus"}, "neither 'cell' nor 'frame'"),
        ({"localiser": {"version": LOCALISER_VERSION + "-other"}}, "localiser version"),
        ({"localiser": {"version": "3"}}, "localiser version '3'"),  # its crops of 2 pbc images differ
        ({"localiser": {}}, "localiser version None"),
    ],
)
def test_a_cell_card_that_cannot_be_served_is_refused_at_load(fake_model_dir, changes, message):
    with pytest.raises(ModelLoadError, match=message):
        Model(fake_model_dir, card=cell_card(fake_model_dir, **changes))


# ---------------------------------------------------------------- the crop path, on the stand-in model
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
EVENTS = Path(__file__).resolve().parents[2] / "events"
CANDIDATE = Path(__file__).resolve().parents[2] / "export" / "recipes" / "2.0.0-candidate-160.json"
BOX = (130, 90, 190, 150)  # a stand-in localiser's white cell in a 320x240 photo


@pytest.fixture(scope="module")
def cell_model_dir(fake_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cell-model")
    shutil.copy(fake_model_dir / "hematovision.onnx", directory / "hematovision.onnx")
    (directory / "model_card.json").write_text(json.dumps(cell_card(fake_model_dir)))
    return directory


@pytest.fixture(scope="module")
def cell_classifier(cell_model_dir):
    return Classifier(Model(cell_model_dir))


@pytest.fixture
def model_inputs(cell_classifier, monkeypatch):
    """Every batch the model is asked to classify (the real predict still answers)."""
    return fakes.record_model_inputs(cell_classifier.model, monkeypatch)


def stand_in_localiser(monkeypatch, boxes, calls=None):
    def fake(image):
        if calls is not None:
            calls.append(image.size)
        return Localisation(boxes=list(boxes), scores=[0.9] * len(boxes), px_per_um=4.0, ruler="red_cells")

    monkeypatch.setattr(classifier_module, "locate", fake)


@pytest.mark.parametrize(
    ("folder", "dataset"),
    [("bccd/TEST_SIMPLE/NEUTROPHIL", "bccd"), ("pbc/EOSINOPHIL", "pbc"), ("dbn/LYMPHOCYTE", "dbn")],
)
def test_the_served_model_input_is_the_training_crop_to_the_byte(cell_classifier, folder, dataset):
    """Training's crop (export/train.py cell_input: decode_image at full size, locate, cell_crop.model_input) and the
    classifier's of the same file are the same pixels: 320x240 (bccd), 360x363 (pbc) and 680x480 (dbn) photos are
    decoded at full size by the serving decode too."""
    require((SHARED / folder).is_dir(), f"shared data not found at {SHARED / folder}")
    path = sorted((SHARED / folder).iterdir())[0]
    model = cell_classifier.model
    recipe = replace(Recipe.load(CANDIDATE), input_size=model.input_size, crop_um=model.crop_um)
    trained = cell_input(Sample(path, 0, dataset, "test"), recipe)
    item, served = cell_classifier.decode(Upload(data=path.read_bytes()), 0)
    assert trained.crop == "cell"  # the localiser found the cell: the comparison is of two crops
    assert (item.crop, item.crop_ruler, item.cells_found) == (trained.crop, trained.ruler, trained.cells)
    assert served.dtype == np.uint8 and np.array_equal(served, trained.pixels)


def test_the_model_sees_the_crop_of_the_one_localisation(cell_classifier, model_inputs, monkeypatch):
    calls = []
    stand_in_localiser(monkeypatch, [BOX], calls)
    data = fakes.synthetic_cell(320, 240)
    item = cell_classifier.classify([data]).items[0]
    assert item.ok and (item.crop, item.crop_ruler, item.cells_found) == ("cell", "red_cells", 1)
    assert calls == [(320, 240)]  # one localisation gives the crop and the flags
    where = Localisation(boxes=[BOX], px_per_um=4.0, ruler="red_cells")
    expected = model_input(decode_image(data), where, 28.0, 224)
    assert np.array_equal(model_inputs[0][0], expected.pixels)
    assert not np.array_equal(expected.pixels, frame_input(decode_image(data), 224))  # the crop is not the frame


def test_several_cells_are_flagged_and_the_answer_is_the_best_cells(cell_classifier, monkeypatch):
    stand_in_localiser(monkeypatch, [BOX, (10, 10, 60, 60)])
    item = cell_classifier.classify([fakes.synthetic_cell(320, 240)]).items[0]
    assert item.crop == "cell" and "multiple_cells" in item.verdict.uncertain_reasons
    assert "the cell the localiser scored highest" in item.verdict.description


def test_the_model_card_rule_alone_still_crops(cell_classifier, monkeypatch):
    """localise=False (evaluate, the card's figures) drops the flags, not the crop: the crop is the model's input."""
    stand_in_localiser(monkeypatch, [BOX, (10, 10, 60, 60)])
    item = cell_classifier.classify([fakes.synthetic_cell(320, 240)], localise=False).items[0]
    assert item.crop == "cell" and item.cells_found is None and "multiple_cells" not in item.verdict.uncertain_reasons


def test_no_cell_gives_the_frame(cell_classifier, model_inputs):
    blank = Image.new("RGB", (320, 240), (236, 205, 210))
    buffer = io.BytesIO()
    blank.save(buffer, format="PNG")
    item = cell_classifier.classify([buffer.getvalue()]).items[0]
    assert (item.crop, item.crop_ruler, item.cells_found) == ("frame", "none", 0)
    assert "no_cell" in item.verdict.uncertain_reasons
    assert np.array_equal(model_inputs[0][0], frame_input(blank, 224))


def test_a_failing_localiser_falls_back_to_the_frame(cell_classifier, model_inputs, monkeypatch):
    def broken(image):
        raise RuntimeError("localiser fault")

    monkeypatch.setattr(classifier_module, "locate", broken)
    data = fakes.synthetic_cell(320, 240)
    item = cell_classifier.classify([data]).items[0]
    assert item.ok and (item.crop, item.crop_ruler, item.cells_found) == ("frame", "none", None)
    assert not {"no_cell", "multiple_cells"} & set(item.verdict.uncertain_reasons)  # no localisation, no flag
    assert np.array_equal(model_inputs[0][0], frame_input(decode_image(data), 224))


def test_a_12_mp_photo_is_cropped_from_enough_pixels(cell_classifier, fake_model_dir, monkeypatch):
    """A cell model decodes as /v1/analyze does (both sides >= 2 x DECODE_SIZE); a frame model only needs twice its
    input."""
    calls = []
    stand_in_localiser(monkeypatch, [(1900, 1400, 2100, 1600)], calls)
    photo = io.BytesIO()
    Image.new("RGB", (4000, 3000), (236, 205, 210)).save(photo, format="JPEG", quality=80)
    item = cell_classifier.classify([photo.getvalue()]).items[0]
    assert item.ok and item.crop == "cell" and (item.width, item.height) == (4000, 3000)
    assert min(calls[0]) >= 2 * DECODE_SIZE
    assert Classifier(Model(fake_model_dir)).decode_size == 224  # 1.2.0's decode is unchanged


def test_analyze_crops_each_cell_with_crop_cells(cell_classifier, model_inputs, monkeypatch):
    boxes = [(200, 150, 260, 210), (20, 20, 80, 80)]  # listed in reading order: the second first
    where = Localisation(boxes=boxes, scores=[0.9, 0.8], px_per_um=4.0, ruler="red_cells")
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return crop_cells(*args, **kwargs)

    monkeypatch.setattr(analysis_module, "crop_cells", spy)
    data = fakes.synthetic_cell(320, 240, fmt="PNG")
    found = Analyzer(cell_classifier, localiser=lambda image: where).analyze(data)
    assert [cell.box for cell in found.cells] == [boxes[1], boxes[0]] and len(calls) == 1
    crops = crop_cells(decode_image(data), where, 28.0, 224)
    assert np.array_equal(model_inputs[0], np.stack([crops[1].pixels, crops[0].pixels]))


def test_the_handler_answers_with_the_crop(cell_model_dir, load_event, context, monkeypatch):
    """The routes with a cell model: events/field.jpg (a bccd field, two white cells) sent to /v1/classify is
    classified on a cell's crop and flagged; the batch events' synthetic cell.jpg holds no cell the localiser finds
    (the frame); /v1/analyze crops through crop_cells."""
    field = (EVENTS / "field.jpg").read_bytes()
    event = {**load_event("classify-raw-jpeg"), "body": base64.b64encode(field).decode(), "isBase64Encoded": True}
    loader = fakes.load_handler_module(cell_model_dir)
    module = next(loader)
    try:
        assert module.MODEL.crop == "cell"
        answer = json.loads(module.lambda_handler(event, context)["body"])
        assert (answer["crop"], answer["crop_ruler"]) == ("cell", "red_cells")
        assert "multiple_cells" in answer["uncertain_reasons"]
        batch = json.loads(module.lambda_handler(load_event("batch-json"), context)["body"])
        answered = [(r["result"]["crop"], r["result"]["crop_ruler"]) for r in batch["results"] if r["ok"]]
        assert answered == [("frame", "none")] * 2
        calls = []
        monkeypatch.setattr(analysis_module, "crop_cells", lambda *a, **k: calls.append(a) or crop_cells(*a, **k))
        cells = json.loads(module.lambda_handler(load_event("analyze-raw-jpeg"), context)["body"])["cells"]
        assert len(cells) == 2 and len(calls) == 1
    finally:
        next(loader, None)
        importlib.reload(module)
