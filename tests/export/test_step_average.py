"""Selection "step_average" (export/train.fit with export/train.StepAverage), in the export venv (Keras): a small
head trained on random features for 3 epochs; the weights it ends with are the mean of the weights after each step
of epochs 2 and 3, recorded independently of the running sums."""

import json
import subprocess

from export_helpers import EXPORT_PYTHON, ROOT, require

SCRIPT = r"""
import json
import time
from dataclasses import replace
from types import SimpleNamespace

import keras
import numpy as np

from export import train
from export.recipe import RECIPE_FILE, Recipe

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(0, 1, (96, 3, 3, 8)).astype("float16")
y = rng.integers(0, 4, 96)
cache = SimpleNamespace(
    x_train=x, y_train=y, x_val=x[:40].astype("float32"), y_val=y[:40], teacher=None, x_outlier=x[:0]
)
inputs = keras.Input((3, 3, 8))
head = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)))
recipe = replace(Recipe.load(RECIPE_FILE), epochs=3, batch_size=32, selection="step_average", average_from_epoch=2)

snapshots = []
add = train.StepAverage.add
def recording_add(self):
    snapshots.append([w.numpy().copy() for w in self.model.trainable_weights])
    add(self)
train.StepAverage.add = recording_add

history, weights = train.fit(head, recipe, cache, time.time(), verbose=0)
expected = [np.mean([s[i] for s in snapshots], axis=0) for i in range(len(snapshots[0]))]
final = [w.numpy() for w in head.trainable_weights]
print(json.dumps({
    "epochs": [entry["epoch"] for entry in history],
    "steps": history[-1]["steps"],
    "snapshots": len(snapshots),
    "max_error": max(float(np.abs(a - b).max()) for a, b in zip(final, expected)),
    "moved_from_last_epoch": max(float(np.abs(a - b).max()) for a, b in zip(final, weights[-2])),
    "selected": train.select_epoch(recipe, history),
    "average_has_val_f1": "val_macro_f1" in history[-1],
}))
"""


def test_step_average_ends_with_the_mean_of_the_weights_after_each_averaged_step():
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    result = subprocess.run([str(EXPORT_PYTHON), "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["epochs"] == [1, 2, 3, "average"] and figures["selected"] == "average"
    assert figures["steps"] == figures["snapshots"] == 2 * 3  # 96 examples in batches of 32, epochs 2 and 3
    assert figures["max_error"] < 1e-6 and figures["moved_from_last_epoch"] > 1e-4
    assert figures["average_has_val_f1"]
