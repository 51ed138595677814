"""Model wrapper, verdict rule, heatmap, classifier use case (random-weights model: no label assertions)."""

import base64
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hematovision.errors import ClientError
from hematovision.logic.classifier import Classifier, Upload
from hematovision.logic.descriptions import DESCRIPTIONS
from hematovision.logic.heatmap import heatmap_png_base64, normalise_cam
from hematovision.logic.inference import Model, ModelLoadError, Thresholds
from hematovision.logic.verdict import LOW_CONFIDENCE, OUT_OF_DISTRIBUTION, verdict
from tests import fakes

CLASSES = fakes.CLASSES


@pytest.fixture(scope="module")
def model(fake_model_dir):
    return Model(fake_model_dir)


def test_model_contract(model):
    batch = np.zeros((3, 224, 224, 3), dtype=np.uint8)
    outputs = model.predict(batch, with_cam=True)
    assert outputs.probabilities.shape == (3, 4) and outputs.probabilities.dtype == np.float32
    assert np.allclose(outputs.probabilities.sum(axis=1), 1, atol=1e-5)
    assert outputs.cam.shape == (3, 7, 7, 4) and outputs.ood_similarity.shape == (3,)
    assert model.predict(batch).cam is None
    assert model.classes == CLASSES and model.threads == 1
    with pytest.raises(ValueError):
        model.predict(np.zeros((1, 100, 100, 3), dtype=np.uint8))


def test_model_load_errors(tmp_path, fake_model_dir):
    with pytest.raises(ModelLoadError):
        Model(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(fake_model_dir, broken)
    card = json.loads((broken / "model_card.json").read_text())
    card["sha256"] = "0" * 64
    (broken / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="sha256"):
        Model(broken)


def test_threshold_override(fake_model_dir, monkeypatch):
    monkeypatch.setenv("HEMATOVISION_UNCERTAINTY_THRESHOLD", "0.99")
    assert Model(fake_model_dir).thresholds.confidence == 0.99
    monkeypatch.setenv("HEMATOVISION_UNCERTAINTY_THRESHOLD", "")
    assert Model(fake_model_dir).thresholds.confidence == 0.5


def test_input_size_comes_from_the_card(tmp_path, fake_model_dir, model):
    assert model.input_size == 224
    card = json.loads((fake_model_dir / "model_card.json").read_text())
    contradicting = tmp_path / "contradicting"
    shutil.copytree(fake_model_dir, contradicting)
    card["input"]["shape"] = ["N", 160, 160, 3]
    (contradicting / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="differs from the ONNX input"):
        Model(contradicting)
    card["input"]["shape"] = ["N", 224, 200, 3]
    with pytest.raises(ModelLoadError, match="not square"):
        Model(fake_model_dir, card=card)


def test_card_and_thresholds_in_code(tmp_path, fake_model_dir, monkeypatch):
    """No model_card.json needed, and explicit thresholds win over the card's and the environment's."""
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(fake_model_dir / "hematovision.onnx", bare / "hematovision.onnx")
    monkeypatch.setenv("HEMATOVISION_UNCERTAINTY_THRESHOLD", "0.99")
    staged = Model(bare, card={"name": "staged", "classes": CLASSES}, thresholds=Thresholds(0.25, 0.1))
    assert (staged.name, staged.thresholds, staged.input_size) == ("staged", Thresholds(0.25, 0.1), 224)
    assert Classifier(staged).classify([fakes.synthetic_cell()]).items[0].ok
    with pytest.raises(ModelLoadError):
        Model(bare)  # no card given and none on disk


def test_client_error_is_one_value_type():
    error = ClientError("image_too_small", "Too small.", 422)
    assert (error.code, error.message, error.status, str(error)) == ("image_too_small", "Too small.", 422, "Too small.")
    assert isinstance(error, ValueError) and ClientError("x", "y").status == 400


def test_folder_suffixes_are_the_supported_formats():
    from hematovision.logic.preprocessing import IMAGE_SUFFIXES, SUPPORTED_FORMATS

    registered = Image.registered_extensions()
    assert {registered[suffix] for suffix in IMAGE_SUFFIXES} == SUPPORTED_FORMATS - {"MPO"}


def test_preprocess_at_another_input_size():
    from hematovision.logic.preprocessing import preprocess

    assert preprocess(fakes.synthetic_cell(), size=96).shape == (96, 96, 3)
    assert preprocess(fakes.synthetic_cell()).shape == (224, 224, 3)


def test_verdict_rule():
    thresholds = Thresholds(confidence=0.6, ood_similarity=0.3)
    sure = verdict(np.array([0.1, 0.7, 0.1, 0.1]), CLASSES, thresholds, 0.9)
    assert sure.label == "LYMPHOCYTE" and not sure.uncertain and sure.description == DESCRIPTIONS["LYMPHOCYTE"]
    assert verdict(np.array([0.4, 0.3, 0.2, 0.1]), CLASSES, thresholds, 0.9).uncertain_reasons == [LOW_CONFIDENCE]
    assert verdict(np.array([0.1, 0.7, 0.1, 0.1]), CLASSES, thresholds, 0.1).uncertain_reasons == [OUT_OF_DISTRIBUTION]
    assert verdict(np.array([0.1, 0.7, 0.1, 0.1]), CLASSES, thresholds, float("nan")).uncertain
    assert not verdict(np.array([0.1, 0.7, 0.1, 0.1]), CLASSES, Thresholds(0.6, None), 0.0).uncertain
    with pytest.raises(ValueError):
        verdict(np.array([0.5, 0.5]), CLASSES, thresholds)


def test_heatmap_png():
    image = np.full((224, 224, 3), 200, dtype=np.uint8)
    cam = np.random.default_rng(0).normal(size=(7, 7, 4))
    data = base64.b64decode(heatmap_png_base64(image, cam, 2))
    png = Image.open(io.BytesIO(data))
    assert png.format == "PNG" and png.size == (224, 224) and len(data) < 60_000
    assert normalise_cam(np.zeros((7, 7))).max() == 0
    assert normalise_cam(np.array([[np.nan, 2.0], [-1.0, 1.0]])).max() == 1.0


def test_classifier_mixed_batch(model):
    classifier = Classifier(model)
    uploads = [
        Upload(data=fakes.synthetic_cell(seed=1)),
        fakes.synthetic_cell(seed=2, fmt="PNG", mode="RGBA"),
        Upload(data=b"not an image"),
        Upload(data=fakes.synthetic_cell()[:1500]),
        Upload(data=None, error=ClientError("invalid_base64", "bad", 400)),
        Upload(data=fakes.synthetic_cell(width=8, height=8, fmt="PNG")),
    ]
    outcome = classifier.classify(uploads, explain=True)
    statuses = [item.error.status if item.error else 200 for item in outcome.items]
    assert statuses == [200, 200, 415, 422, 400, 422]
    first = outcome.items[0]
    assert first.verdict.label in CLASSES and set(first.verdict.probabilities) == set(CLASSES)
    assert first.heatmap["media_type"] == "image/png" and (first.width, first.height) == (320, 240)
    assert sum(outcome.counts.values()) == 2 and outcome.inference_ms > 0


def test_classifier_matches_direct_inference(model):
    """The use case adds nothing to the numbers: same probabilities as the session on preprocess()."""
    from hematovision.logic.preprocessing import preprocess

    data = fakes.synthetic_cell(seed=3)
    item = Classifier(model).classify([data]).items[0]
    direct = model.predict(preprocess(data)[None]).probabilities[0]
    assert np.allclose([item.verdict.probabilities[c] for c in CLASSES], direct, atol=1e-6)


def _jpeg(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def _smooth_picture(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], axis=-1).astype(
        np.uint8
    )


def test_large_jpeg_is_decoded_at_reduced_scale_with_its_upright_size_reported():
    from hematovision.logic.preprocessing import decode_for_model, decode_image, draft_min_side, to_model_input

    data = _jpeg(_smooth_picture(1800, 2400), orientation=6)  # stored landscape, upright portrait
    decoded = decode_for_model(data)
    assert (decoded.width, decoded.height) == (1800, 2400)
    assert draft_min_side(224) <= min(decoded.image.size) < 1800 and decoded.image.size[0] < decoded.image.size[1]
    full = decode_image(data)
    assert full.size == (1800, 2400)
    difference = np.abs(to_model_input(decoded.image).astype(int) - to_model_input(full).astype(int))
    assert difference.max() <= 4 and difference.mean() < 0.5


def test_small_jpeg_is_decoded_in_full():
    from hematovision.logic.preprocessing import decode_for_model, decode_image

    data = _jpeg(_smooth_picture(240, 320))
    decoded = decode_for_model(data)
    assert (decoded.width, decoded.height) == (320, 240)
    np.testing.assert_array_equal(np.asarray(decoded.image), np.asarray(decode_image(data)))


def test_request_decode_budget_is_shared_in_a_request_but_not_across_files(model, monkeypatch, tmp_path):
    """A batch request shares one decode budget; files on the command line (classify_files) each get their own."""
    from hematovision.logic import preprocessing
    from hematovision.logic.evaluation import classify_files

    image = fakes.synthetic_cell(width=1200, height=900, fmt="PNG")
    one_cost = 1200 * 900 * 3 * 2  # decoded RGB and the RGB result, as preprocessing counts an unreduced image
    monkeypatch.setattr(preprocessing, "MAX_REQUEST_DECODE_BYTES", int(2.5 * one_cost))
    outcome = Classifier(model).classify([image] * 4, localise=False)
    statuses = [item.error.status if item.error else 200 for item in outcome.items]
    assert statuses[:2] == [200, 200] and 413 in statuses[2:]

    files = []
    for index in range(4):
        files.append(tmp_path / f"cell{index}.png")
        files[-1].write_bytes(image)
    results = [item for _, item in classify_files(Classifier(model), files)]
    assert all(item.error is None for item in results)
