"""Validation-only check: would test-time augmentation (mean probabilities over dihedral views) help?

    PYTHONPATH=functions/classifier .venv/bin/python -m export.tta_check [MODEL.onnx] [--sets bccd_val pbc_val]

Runs the exported ONNX model on each validation image in 1, 2 (flip), 4 (quarter-turns) and 8 orientations and
prints accuracy and macro-F1 per variant. It never reads bccd TEST or TEST_SIMPLE unless asked to.
Serving does not use TTA: it would cost 2-8 inferences per request (see docs/experiments.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from export.augment import dihedral
from export.data import CLASSES, all_splits

VARIANTS = {"single": [0], "flip (2)": [0, 4], "quarter-turns (4)": [0, 1, 2, 3], "all 8": list(range(8))}
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "functions" / "classifier" / "model" / "hematovision.onnx"


def main() -> None:
    import onnxruntime as ort

    from hematovision.logic.metrics import compute_metrics
    from hematovision.logic.preprocessing import preprocess_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--sets", nargs="+", default=["bccd_val", "pbc_val"])
    args = parser.parse_args()

    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    named = all_splits()
    for name in args.sets:
        samples = named[name]
        labels = np.array([s.label for s in samples])
        probabilities = np.zeros((8, len(samples), len(CLASSES)), np.float32)
        started = time.time()
        for start in range(0, len(samples), 32):
            images = [preprocess_file(s.path) for s in samples[start : start + 32]]
            for k in range(8):
                batch = np.stack([dihedral(image, k) for image in images])
                probabilities[k, start : start + len(images)] = session.run(["probabilities"], {input_name: batch})[0]
        print(f"{name}: {len(samples)} images, {time.time() - started:.0f} s")
        for variant, orientations in VARIANTS.items():
            metrics = compute_metrics(labels, probabilities[orientations].mean(axis=0).argmax(axis=1), CLASSES)
            print(f"  {variant:18s} accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
