"""export.train.mixup_batches: the Keras batches of mixed-up cached features (`python -m export train --mixup A`).

Runs in the export venv (Keras), like the smoke test."""

import json
import subprocess

from export_helpers import EXPORT_PYTHON, ROOT, require

PROGRAM = """
import json
import numpy as np
import keras
from export.train import mixup_batches

x = np.arange(10 * 3, dtype=np.float16).reshape(10, 3)
y = np.eye(2, dtype=np.float32)[np.arange(10) % 2]
w = np.linspace(0.5, 1.5, 10).astype(np.float32)
batches = mixup_batches(x, y, w, batch_size=4, alpha=0.3, seed=5)
epoch0 = [batches[i] for i in range(len(batches))]
repeated = [batches[i] for i in range(len(batches))]
batches.on_epoch_end()
epoch1 = [batches[i] for i in range(len(batches))]
same = all(np.array_equal(a[k], b[k]) for a, b in zip(epoch0, repeated) for k in range(3))
changed = any(not np.array_equal(a[0], b[0]) for a, b in zip(epoch0, epoch1))

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy")
fitted = model.fit(mixup_batches(x, y, w, batch_size=4, alpha=0.3, seed=5), epochs=2, verbose=0)
print(json.dumps({
    "batches": len(batches), "sizes": [len(b[0]) for b in epoch0], "same": same, "changed": changed,
    "targets_sum_to_one": bool(all(np.allclose(b[1].sum(axis=1), 1) for b in epoch0 + epoch1)),
    "within_range": bool(all(b[0].min() >= 0 and b[0].max() <= 29 for b in epoch0 + epoch1)),
    "losses": fitted.history["loss"],
}))
"""


def test_mixup_batches_have_an_epochs_sizes_repeat_within_it_change_between_epochs_and_train_a_keras_model():
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    result = subprocess.run([str(EXPORT_PYTHON), "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["batches"] == 3 and facts["sizes"] == [4, 4, 2]
    assert facts["same"] and facts["changed"]
    assert facts["targets_sum_to_one"] and facts["within_range"]
    assert len(facts["losses"]) == 2
