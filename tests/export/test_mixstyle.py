"""MixStyle (export/mixstyle.py) on synthetic feature maps, in the export venv (Keras): the identity at inference and
at probability 0; in training, each mixed example keeps its normalised content and takes per-channel statistics that
lie between its own and another example's."""

import json
import subprocess

from export_helpers import EXPORT_PYTHON, ROOT, require

SCRIPT = r"""
import json
import numpy as np
from export.mixstyle import MixStyle

rng = np.random.default_rng(0)
# 16 examples of 6x6x5 features, each with its own per-channel offset and spread (its "style")
offsets = rng.normal(0, 3, (16, 1, 1, 5))
spreads = rng.uniform(0.5, 4, (16, 1, 1, 5))
x = (rng.normal(0, 1, (16, 6, 6, 5)) * spreads + offsets).astype("float32")

def stats(a):
    return a.mean(axis=(1, 2)), a.std(axis=(1, 2))

always = MixStyle(1.0, 0.1, seed=3)
never = MixStyle(0.0, 0.1, seed=3)
trained = np.asarray(always(x, training=True))
mean, std = stats(x)
new_mean, new_std = stats(trained)
normalised = lambda a: (a - a.mean(axis=(1, 2), keepdims=True)) / a.std(axis=(1, 2), keepdims=True)
lo_m, hi_m = mean.min(axis=0), mean.max(axis=0)
print(json.dumps({
    "inference_identity": bool(np.array_equal(np.asarray(always(x, training=False)), x)),
    "probability_0_identity": bool(np.array_equal(np.asarray(never(x, training=True)), x)),
    "shape": list(trained.shape),
    "content_kept": float(np.abs(normalised(trained) - normalised(x)).max()),
    "means_within_batch_range": bool(((new_mean >= lo_m - 1e-4) & (new_mean <= hi_m + 1e-4)).all()),
    "stds_within_batch_range": bool(((new_std >= std.min(axis=0) - 1e-3) & (new_std <= std.max(axis=0) + 1e-3)).all()),
    "examples_changed": int((np.abs(new_mean - mean).max(axis=1) > 1e-3).sum()),
}))
"""


def test_mixstyle_mixes_statistics_in_training_only():
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    result = subprocess.run([str(EXPORT_PYTHON), "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["inference_identity"] and figures["probability_0_identity"]
    assert figures["shape"] == [16, 6, 6, 5]
    assert figures["content_kept"] < 1e-3  # the normalised feature map is the same: only the statistics moved
    assert figures["means_within_batch_range"] and figures["stds_within_batch_range"]
    # Beta(0.1, 0.1) puts lambda near 0 or 1; with a random partner, most of 16 examples take another's style
    assert figures["examples_changed"] >= 4
