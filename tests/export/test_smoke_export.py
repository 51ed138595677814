"""`python -m export all --smoke` end to end: train on a few dozen images, convert, evaluate, parity.

Runs in the export venv (.venv-export: TensorFlow, tf2onnx), which `make test` creates. About 2-3 minutes.
"""

import json
import subprocess

import numpy as np
import pytest
from export_helpers import EXPORT_PYTHON, ROOT, SHARED_DATA, require


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    require((SHARED_DATA / "bccd" / "TRAIN").is_dir(), f"shared data not found at {SHARED_DATA}")
    work = tmp_path_factory.mktemp("smoke")
    result = subprocess.run(
        [str(EXPORT_PYTHON), "-m", "export", "all", "--smoke", "--work", str(work), "--out", str(work / "model")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work


def test_smoke_training_keeps_batchnorm_fixed(smoke_run):
    report = json.loads((smoke_run / "train_report.json").read_text())
    assert report["batchnorm_check"]["max_moving_mean_drift"] == 0.0
    assert report["history"] and report["history"][0]["epoch"] == 1


def test_smoke_training_selects_among_epochs_their_weight_average_and_the_soup_of_seeds(smoke_run):
    report = json.loads((smoke_run / "train_report.json").read_text())
    recipe = report["recipe"]
    seeds = [recipe["seed"], *recipe["soup_seeds"]]
    assert len(seeds) == 2
    candidates = recipe["candidates_val_macro_f1"]
    per_seed = {f"seed {s} {name}" for s in seeds for name in ("epoch 1", "epoch 2", "mean of epochs 1-2")}
    assert set(candidates) == per_seed | {f"soup of seeds {seeds[0]}, {seeds[1]}"}
    assert candidates[recipe["selected_epoch"]] == max(candidates.values())
    assert [(h["seed"], h["epoch"]) for h in report["history"]] == [(s, e) for s in seeds for e in (1, 2)]


def test_smoke_training_gives_some_pbc_views_bccd_colours(smoke_run):
    recipe = json.loads((smoke_run / "train_report.json").read_text())["recipe"]
    assert "colour statistics of a random bccd training frame with probability 0.5" in recipe["augmentation"]


def test_smoke_export_meets_the_artifact_contract(smoke_run):
    import onnxruntime as ort

    model_dir = smoke_run / "model"
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["parity"]["passed"], card["parity"]
    assert card["parity"]["max_abs_probability_diff"] <= 1e-4
    session = ort.InferenceSession(str(model_dir / "hematovision.onnx"), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.type == "tensor(uint8)" and image.shape[1:] == [224, 224, 3]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "cam", "ood_similarity"]
    batch = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    probabilities, cam, similarity = session.run(None, {"image": batch})
    assert probabilities.shape == (3, 4) and cam.shape == (3, 7, 7, 4) and similarity.shape == (3,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for key in ("bccd_test", "bccd_test_simple", "pbc_test", "bccd_val", "pbc_val"):
        assert card["metrics"][key]["n"] > 0
    assert 0.0 <= card["non_blood_images"]["flagged_uncertain_fraction"] <= 1.0
    assert (model_dir / "hematovision.onnx").stat().st_size <= 10 * 1024 * 1024


def test_smoke_model_is_served_by_the_handler_code(smoke_run):
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    classifier = Classifier(Model(smoke_run / "model", intra_op_threads=1))
    jpeg = next((SHARED_DATA / "bccd" / "TEST_SIMPLE" / "MONOCYTE").iterdir()).read_bytes()
    (item,) = classifier.classify([jpeg]).items
    assert item.ok and item.verdict.label in classifier.model.classes
