"""The card's input.test_time (logic/inference.Model): "mirror" runs each input and its left-right mirror and averages
the probabilities and the OOD score; "none" (or absent) runs once; an unknown value is refused at load. The recipe
writes the field into the card, and the parity check runs the Keras model the same way."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from export.card import crop_fields, loading_card, preprocessing_text
from export.recipe import TEST_TIMES as RECIPE_TEST_TIMES
from export.recipe import Recipe
from hematovision.logic.inference import TEST_TIMES, Model, ModelLoadError

ROOT = Path(__file__).resolve().parents[2]
MIRROR_RECIPE = ROOT / "export" / "recipes" / "2.0.0-candidate-160-balanced-mirror-s17.json"


class RecordingSession:
    """Stands in for the onnxruntime session: outputs that depend on which side of the image is brighter, so a
    mirrored input gives other outputs; records each batch it is given."""

    def __init__(self):
        self.batches = []

    def run(self, names, feed):
        batch = feed["image"].astype(np.float64)
        self.batches.append(feed["image"].copy())
        width = batch.shape[2]
        left = batch[:, :, : width // 2].mean(axis=(1, 2, 3))
        right = batch[:, :, width // 2 :].mean(axis=(1, 2, 3))
        share = left / (left + right)
        outputs = {
            "probabilities": np.stack([share, 1 - share, np.zeros_like(share), np.zeros_like(share)], axis=1),
            "ood_similarity": share,
            "cam": np.repeat(share[:, None, None, None], 4, axis=3) * np.ones((1, 7, 7, 4)),
        }
        return [outputs[name].astype(np.float32) for name in names]


def model_with(fake_model_dir, test_time=None) -> Model:
    card = json.loads((fake_model_dir / "model_card.json").read_text())
    if test_time is not None:
        card["input"]["test_time"] = test_time
    model = Model(fake_model_dir, card=card)
    model.session = RecordingSession()
    return model


def lopsided(n: int = 3) -> np.ndarray:
    """n images, each brighter on its left half by a different amount."""
    images = np.full((n, 224, 224, 3), 40, np.uint8)
    for i in range(n):
        images[i, :, :112] = 80 + 50 * i
    return images


def test_mirror_averages_each_input_with_its_mirror(fake_model_dir):
    images = lopsided()
    single = model_with(fake_model_dir).predict(images, with_cam=True)
    mirrored = model_with(fake_model_dir).predict(images[:, :, ::-1], with_cam=True)
    model = model_with(fake_model_dir, "mirror")
    both = model.predict(images, with_cam=True)
    (batch,) = model.session.batches
    assert len(batch) == 6 and np.array_equal(batch[3:], images[:, :, ::-1])  # one run of the inputs and mirrors
    np.testing.assert_allclose(both.probabilities, (single.probabilities + mirrored.probabilities) / 2, rtol=1e-6)
    np.testing.assert_allclose(both.ood_similarity, (single.ood_similarity + mirrored.ood_similarity) / 2, rtol=1e-6)
    assert not np.allclose(both.probabilities, single.probabilities)  # the mirror did change the answer
    np.testing.assert_array_equal(both.cam, single.cam)  # the heatmap stays the input's own


def test_no_test_time_runs_once(fake_model_dir):
    for model in (model_with(fake_model_dir), model_with(fake_model_dir, "none")):
        model.predict(lopsided())
        assert model.test_time == "none" and [len(b) for b in model.session.batches] == [3]


def test_an_unknown_test_time_is_refused(fake_model_dir):
    card = json.loads((fake_model_dir / "model_card.json").read_text())
    card["input"]["test_time"] = "eight_flips"
    with pytest.raises(ModelLoadError, match="test_time 'eight_flips'"):
        Model(fake_model_dir, card=card)


def test_the_recipe_writes_test_time_into_the_card():
    assert RECIPE_TEST_TIMES == TEST_TIMES
    recipe = Recipe.load(MIRROR_RECIPE)
    assert crop_fields(recipe)[0]["test_time"] == "mirror" and loading_card(recipe)["input"]["test_time"] == "mirror"
    assert "left-right mirror" in preprocessing_text(recipe)
    plain = replace(recipe, test_time="none")
    assert "test_time" not in crop_fields(plain)[0] and "mirror" not in preprocessing_text(plain)
    with pytest.raises(ValueError, match="test_time"):
        replace(recipe, test_time="eight_flips")


def test_parity_runs_the_keras_model_as_the_served_model_runs():
    from export.evaluate import keras_outputs

    class KerasLike:
        def predict_on_batch(self, batch):
            session = RecordingSession()
            probabilities, similarity = session.run(["probabilities", "ood_similarity"], {"image": batch})
            return {"probabilities": probabilities, "ood_similarity": similarity}

    images = lopsided()
    once = keras_outputs(KerasLike(), images)
    mirror = keras_outputs(KerasLike(), images, "mirror")
    flipped = keras_outputs(KerasLike(), np.ascontiguousarray(images[:, :, ::-1]))
    np.testing.assert_allclose(mirror["probabilities"], (once["probabilities"] + flipped["probabilities"]) / 2)
    np.testing.assert_array_equal(
        once["probabilities"], KerasLike().predict_on_batch(images)["probabilities"]
    )  # "none" is the plain run
