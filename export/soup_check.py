"""Validation-only check: is the mean of several trained models' weights (a "model soup") better than each?

    .venv-export/bin/python -m export.soup_check build/run4 build/run7 [build/run11 ...]

Each argument is a training work folder holding classifier.keras. The runs must share the architecture (same
--frozen-blocks); BatchNorm is frozen at the ImageNet statistics in every run, so a weight mean needs no
re-estimated statistics. Prints accuracy and macro-F1 on bccd val, pbc val and both, for each run, for the
uniform soup (mean weights: one model, same size and speed) and, for reference only, for the probability
ensemble (N models: N times the size and latency). Wortsman et al., "Model soups", ICML 2022. It never reads
bccd TEST or TEST_SIMPLE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions" / "classifier"))

from export.data import CLASSES, all_splits  # noqa: E402
from export.train import mean_weights  # noqa: E402

SETS = ("bccd_val", "pbc_val")


def report(name: str, probabilities: np.ndarray, labels: np.ndarray, is_bccd: np.ndarray) -> None:
    from hematovision.logic.metrics import compute_metrics

    predicted = probabilities.argmax(axis=1)
    parts = []
    for part, mask in (("bccd val", is_bccd), ("pbc val", ~is_bccd), ("both", np.ones_like(is_bccd))):
        metrics = compute_metrics(labels[mask], predicted[mask], CLASSES)
        parts.append(f"{part} acc {metrics['accuracy']:.4f} F1 {metrics['macro_f1']:.4f}")
    print(f"{name:28s} " + " | ".join(parts), flush=True)


def main() -> None:
    import keras

    from hematovision.logic.preprocessing import preprocess_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="training work folders holding classifier.keras")
    args = parser.parse_args()

    named = all_splits()
    samples = [s for name in SETS for s in named[name]]
    labels = np.array([s.label for s in samples])
    is_bccd = np.array([s.dataset == "bccd" for s in samples])
    started = time.time()
    images = np.stack([preprocess_file(s.path) for s in samples]).astype(np.float32)
    print(f"{len(samples)} validation images decoded in {time.time() - started:.0f} s", flush=True)

    models = [keras.models.load_model(run / "classifier.keras") for run in args.runs]
    each = []
    for run, model in zip(args.runs, models):
        each.append(model.predict(images, batch_size=64, verbose=0))
        report(str(run), each[-1], labels, is_bccd)
    report(f"ensemble of {len(models)} (reference)", np.mean(each, axis=0), labels, is_bccd)
    soup = keras.models.clone_model(models[0])
    soup.set_weights(mean_weights(m.get_weights() for m in models))  # frozen tensors are identical across runs
    report(f"uniform soup of {len(models)}", soup.predict(images, batch_size=64, verbose=0), labels, is_bccd)


if __name__ == "__main__":
    main()
