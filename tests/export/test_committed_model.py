"""The committed model: its card matches the file, and its accuracy is re-measured through the serving code.

Needs ../shared/data (skips locally without it, fails in CI). bccd TEST takes about a minute on 2 cores.
"""

import json

import numpy as np
import pytest
from export_helpers import MODEL_DIR, ROOT, SHARED_DATA, require

from export.data import all_splits, dbn_named, split_digest
from hematovision.logic.inference import sha256_file

ONNX = MODEL_DIR / "hematovision.onnx"
CARD = MODEL_DIR / "model_card.json"
# The card's own figures must be reproduced exactly; on top, these floors stop a worse model from landing.
# They are the 1.2.0 model's measured level rounded down. Issue 2's TEST_SIMPLE (>= 0.92) and flagged
# (bccd TEST <= 0.10) targets are met; bccd TEST accuracy and macro-F1 (>= 0.92) are not yet (docs/model-card.md).
MIN_ACCURACY = {"bccd_test": 0.88, "bccd_test_simple": 0.92, "pbc_test": 0.99}
MIN_MACRO_F1 = {"bccd_test": 0.88}
MAX_FLAGGED = {"bccd_test": 0.10}
MIN_NON_BLOOD_FLAGGED = 0.90


@pytest.fixture(scope="module")
def card():
    require(ONNX.is_file() and CARD.is_file(), f"no committed model in {MODEL_DIR}")
    return json.loads(CARD.read_text())


@pytest.fixture(scope="module")
def classifier(card):
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    return Classifier(Model(MODEL_DIR, intra_op_threads=2))


@pytest.fixture(scope="module")
def splits():
    require((SHARED_DATA / "bccd" / "TEST").is_dir(), f"shared data not found at {SHARED_DATA}")
    require((SHARED_DATA / "dbn").is_dir(), f"the third lab's data not found at {SHARED_DATA / 'dbn'}")
    return {**all_splits(SHARED_DATA), **dbn_named(SHARED_DATA)}


def test_card_describes_the_committed_file(card):
    assert card["sha256"] == sha256_file(ONNX)
    assert ONNX.stat().st_size <= 10 * 1024 * 1024
    assert card["classes"] == ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
    assert card["parity"]["passed"] and card["parity"]["max_abs_probability_diff"] <= 1e-4
    assert card["not_a_diagnosis"] is True and "not a diagnosis" in card["intended_use"]
    assert card["training"]["batchnorm_check"]["max_moving_mean_drift"] == 0.0
    assert set(card["uncertainty"]["chosen_on"]) == {"bccd_val", "pbc_val"}


def test_readme_states_the_committed_models_figures(card):
    """README's model table and precision paragraph are the card's figures, rounded as printed."""
    from hematovision.logic.metrics import wilson_interval

    readme = (ROOT / "README.md").read_text()
    metrics = card["metrics"]
    assert f"Model {card['version']}, measured on the ONNX model" in readme
    for name in ("bccd_test", "bccd_test_simple", "pbc_test", "bccd_val"):
        row = f"| {metrics[name]['n']} | {metrics[name]['accuracy']:.3f} | {metrics[name]['macro_f1']:.3f} | "
        assert row in readme, f"README's {name} row should contain {row!r}"
    simple = metrics["bccd_test_simple"]
    correct = sum(row[i] for i, row in enumerate(simple["confusion_matrix"]))
    low, high = wilson_interval(correct, simple["n"])
    assert f"{correct} of {simple['n']} right, 95% interval {low:.3f}-{high:.3f}" in readme


def test_card_was_made_with_the_committed_split_rule(card, splits):
    """The recorded validation and training files are the ones export/data.py selects today."""
    for name in ("bccd_train", "bccd_val", "pbc_train", "pbc_val", "pbc_test", "dbn_select", "dbn_report"):
        assert card["data"]["splits"][name]["files_sha256"] == split_digest(splits[name], SHARED_DATA), name


@pytest.mark.parametrize("split", ["bccd_test", "bccd_test_simple", "pbc_test", "dbn_select", "dbn_report"])
def test_accuracy_is_reproduced_through_the_serving_code(card, classifier, splits, split):
    from export.evaluate import serving_metrics

    measured = serving_metrics(classifier, splits[split])
    stated = card["metrics"][split]
    assert measured["confusion_matrix"] == stated["confusion_matrix"]
    assert measured["uncertain_fraction"] == pytest.approx(stated["uncertain_fraction"], abs=1e-12)
    if split in MIN_ACCURACY:
        assert measured["accuracy"] >= MIN_ACCURACY[split], measured
    if split in MIN_MACRO_F1:
        assert measured["macro_f1"] >= MIN_MACRO_F1[split], measured
    if split in MAX_FLAGGED:
        assert measured["uncertain_fraction"] <= MAX_FLAGGED[split], measured


def test_non_blood_images_are_flagged_uncertain(card, classifier):
    from export.evaluate import non_blood_images

    images = non_blood_images()
    # the card's figure is the model's own rule (low confidence, out of distribution), without the localiser's flags
    outcome = classifier.classify([data for _, data in images], localise=False)
    flags = [item.verdict.uncertain for item in outcome.items]
    assert np.mean(flags) >= MIN_NON_BLOOD_FLAGGED
    assert np.mean(flags) == pytest.approx(card["non_blood_images"]["flagged_uncertain_fraction"], abs=1e-12)


def test_a_robustness_row_is_reproduced_through_the_serving_code(card, classifier, splits):
    """bccd TEST_SIMPLE under one perturbation of the card's table (71 images), re-measured."""
    from export.robustness import perturbed_raw, row

    raws = perturbed_raw(classifier, splits["bccd_test_simple"], ["hue_+15"])
    stated = card["robustness"]["rows"]["hue_+15"]["bccd_test_simple"]
    measured = row(raws["hue_+15"], classifier.model.thresholds)
    assert measured["n"] == stated["n"] and measured["crop_cell"] == stated["crop_cell"]
    for key in ("accuracy", "flagged_fraction", "accuracy_unflagged"):
        assert measured[key] == pytest.approx(stated[key], abs=1e-12), key
