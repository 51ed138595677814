"""Ensemble distillation (export/train.teacher_probabilities, training_targets), in the export venv (Keras): a teacher
run folder written by build_models' classifier gives, on the cached features of some pictures, the probabilities its
classifier gives on the pictures themselves; a teacher with other cached features is refused; the targets mix the
label and the teachers' mean by the recipe's weight."""

import json
import subprocess

from export_helpers import EXPORT_PYTHON, ROOT, require

from export.model import DEFAULT_WEIGHTS

SCRIPT = r"""
import json
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from export import train
from export.model import DEFAULT_WEIGHTS
from export.recipe import RECIPE_FILE, RUN_RECIPE_NAME, Recipe

keras.utils.set_random_seed(0)
folder = Path(sys.argv[1])
base = replace(Recipe.load(RECIPE_FILE), input_size=96)
teachers = []
for k in range(2):
    run = folder / f"teacher{k}"
    run.mkdir()
    models = train.build_models(DEFAULT_WEIGHTS, base)  # ImageNet and a random head: a stand-in for a trained run
    rng = np.random.default_rng(k)
    weights = models.classifier.get_weights()
    weights[-2] = rng.normal(0, 0.5, weights[-2].shape).astype("float32")  # the Dense kernel: teachers differ
    models.classifier.set_weights(weights)
    models.classifier.save(run / "classifier.keras")
    base.save(run / RUN_RECIPE_NAME)
    teachers.append((str(run), models))

ramp = np.linspace(0, 1, 96, dtype="float32")[None, :, None, None] * np.ones((1, 96, 96, 1), "float32")
colours = np.array([[250, 20, 20], [20, 250, 20], [20, 20, 250], [200, 200, 200], [30, 30, 30]], "float32")
pictures = colours[:, None, None, :] * ramp * np.arange(1, 6, dtype="float32")[:, None, None, None] / 5
cached = teachers[0][1].bottom.predict(pictures, verbose=0).astype("float16")
direct = np.mean([models.classifier.predict(pictures, verbose=0) for _, models in teachers], axis=0)
student = replace(base, teachers=tuple(run for run, _ in teachers), distill_weight=0.8)
mean, described = train.teacher_probabilities(student, cached)

refused = ""
try:
    train.teacher_probabilities(replace(student, input_size=128), cached)
except ValueError as error:
    refused = str(error)

labels = np.array([0, 1, 2, 3, 0])
targets = train.training_targets(student, labels, mean)
print(json.dumps({
    "max_error": float(np.abs(mean - direct).max()),
    "spread": float(direct.std(axis=0).max()),
    "described": [d["recipe"] for d in described],
    "refused": refused,
    "targets_error": float(np.abs(targets - (0.2 * np.eye(4)[labels] + 0.8 * mean)).max()),
    "one_hot": train.training_targets(base, labels, None).tolist(),
}))
"""


def test_teacher_probabilities_are_the_teachers_own_on_the_cached_features(tmp_path):
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    require(DEFAULT_WEIGHTS.is_file(), f"ImageNet weights not found at {DEFAULT_WEIGHTS}")
    result = subprocess.run(
        [str(EXPORT_PYTHON), "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["spread"] > 1e-3  # the teachers' answers differ between pictures: the comparison means something
    assert figures["max_error"] < 2e-3  # float16 cache
    assert len(figures["described"]) == 2
    assert "input_size" in figures["refused"]
    assert figures["targets_error"] < 1e-6
    assert figures["one_hot"][1] == [0.0, 1.0, 0.0, 0.0]
