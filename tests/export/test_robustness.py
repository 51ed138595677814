"""export/robustness.py: the perturbed images reach the serving code losslessly, the table's bookkeeping, and the
cell model's calibration rule (on made-up outputs: what it chooses, and that it keeps the clean-flag budget)."""

import io

import numpy as np
import pytest
from PIL import Image

from export.data import Sample, fixed_subsample
from export.perturb import PERTURBATIONS
from export.robustness import (
    CONFIDENCE_GRID,
    MAX_CLEAN_FLAGGED,
    NONE,
    TARGET_UNFLAGGED_ACCURACY,
    Raw,
    calibrate,
    perturbed_png,
    perturbed_raw,
    row,
    table,
)
from hematovision.logic.inference import Thresholds
from tests import fakes


@pytest.fixture
def samples(tmp_path):
    """Two smear-like JPEGs per class."""
    made = []
    for label in range(4):
        for i in range(2):
            path = tmp_path / f"{label}-{i}.jpg"
            path.write_bytes(fakes.synthetic_cell(seed=10 * label + i))
            made.append(Sample(path, label, "pbc", "test"))
    return made


def test_a_fixed_subsample_is_per_class_and_independent_of_the_listing_order(samples):
    picked = fixed_subsample(samples, 1)
    assert sorted(s.label for s in picked) == [0, 1, 2, 3]
    assert fixed_subsample(list(reversed(samples)), 1) == picked
    assert fixed_subsample(samples, None) == samples


def test_the_perturbed_png_is_the_perturbation_of_the_decoded_image(samples):
    from hematovision.logic.preprocessing import decode_image

    decoded = np.asarray(decode_image(samples[0].path.read_bytes()))
    for name in (NONE, "hue_+15", "scale_x2"):
        png = perturbed_png(samples[0], name)
        expected = decoded if name == NONE else PERTURBATIONS[name](decoded)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), expected)


def test_perturbed_images_go_through_the_serving_classifier(samples, fake_model_dir):
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    classifier = Classifier(Model(fake_model_dir, intra_op_threads=1))
    raws = perturbed_raw(classifier, samples, [NONE, "stain_yellow"])
    for raw in raws.values():
        assert raw.probabilities.shape == (8, 4) and raw.similarity.shape == (8,)
        assert list(raw.labels) == [s.label for s in samples] and set(raw.crops) == {"frame"}
    # the unperturbed row is what the serving classify answers for the original file
    (item, *_) = classifier.classify([samples[0].path.read_bytes()], localise=False).items
    assert item.verdict.confidence == pytest.approx(float(raws[NONE].probabilities[0].max()), abs=1e-6)
    rows = table(
        {"pbc_test": {name: raws.get(name, raws[NONE]) for name in [NONE, *PERTURBATIONS]}}, classifier.model.thresholds
    )
    assert list(rows) == [NONE, *PERTURBATIONS] and rows["stain_yellow"]["pbc_test"]["n"] == 8


def raw(confidences, correct, similarity=None):
    """Made-up outputs: the predicted class 0 with the given confidence; label 0 where correct, else 1."""
    confidences = np.asarray(confidences, dtype=np.float32)
    probabilities = np.zeros((len(confidences), 4), np.float32)
    probabilities[:, 0] = confidences
    probabilities[:, 1:] = ((1 - confidences) / 3)[:, None]
    similarity = np.linspace(0.8, 1.0, len(confidences)) if similarity is None else np.asarray(similarity)
    return Raw(probabilities, similarity.astype(np.float32), np.where(correct, 0, 1), ["cell"] * len(confidences))


def test_row_counts_flags_by_the_cards_rule():
    r = row(raw([0.9, 0.9, 0.4, 0.4], [True, False, True, False]), Thresholds(0.5, 0.5))
    assert r["n"] == 4 and r["accuracy"] == 0.5 and r["flagged_fraction"] == 0.5 and r["accuracy_unflagged"] == 0.5


def test_calibration_takes_the_smallest_threshold_that_makes_unflagged_answers_right():
    clean = raw([0.95] * 100, [True] * 100)
    # perturbed: wrong answers at confidence 0.555-0.645, right ones at 0.9: unflagged answers are all right from 0.65
    perturbed = raw([0.555 + 0.01 * (i % 10) for i in range(50)] + [0.9] * 50, [False] * 50 + [True] * 50)
    chosen = calibrate(clean, perturbed)
    assert chosen["confidence_threshold"] == 0.65 and chosen["target_met"]
    assert chosen["perturbed_accuracy_unflagged"] >= TARGET_UNFLAGGED_ACCURACY
    assert chosen["clean_flagged_fraction"] <= 0.01  # the lowest 1% of similarities (the OOD threshold) only


def test_calibration_never_flags_more_clean_images_than_its_budget():
    # the clean images' confidences are spread evenly: a threshold t flags about (t - 0.3) / 0.7 of them
    clean = raw(np.linspace(0.3, 1.0, 200), [True] * 200)
    perturbed = raw([0.98] * 10 + [0.99] * 10, [False] * 10 + [True] * 10)  # only a 0.99 threshold would do
    chosen = calibrate(clean, perturbed)
    assert not chosen["target_met"]
    assert chosen["clean_flagged_fraction"] <= MAX_CLEAN_FLAGGED
    assert chosen["confidence_threshold"] in CONFIDENCE_GRID and chosen["confidence_threshold"] < 0.4
