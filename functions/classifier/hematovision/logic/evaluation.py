"""Classify image files in batches and score them: one implementation for `hematovision evaluate` and
for the model card written by export/, so the CLI reproduces the card's figures exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from hematovision.errors import ClientError
from hematovision.limits import INFERENCE_BATCH
from hematovision.logic.classifier import Classifier, ItemOutcome, Upload
from hematovision.logic.metrics import compute_metrics


def classify_files(
    classifier: Classifier, files: Sequence[Path], batch: int = INFERENCE_BATCH, localise: bool = True
) -> Iterator[tuple[Path, ItemOutcome]]:
    """Yields (path, ItemOutcome) in order, `batch` files per onnxruntime call; an unreadable file is an item error.

    `localise`: add the localiser's multiple_cells / no_cell flags, as /v1/classify does (the CLI's classify).
    """
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        uploads = []
        for path in chunk:
            try:
                uploads.append(Upload(data=Path(path).read_bytes(), filename=str(path)))
            except OSError as error:
                uploads.append(
                    Upload(
                        data=None,
                        filename=str(path),
                        error=ClientError("unreadable_file", str(error.strerror or error), 400),
                    )
                )
        outcome = classifier.classify(uploads, localise=localise, one_request=False)
        yield from zip(chunk, outcome.items, strict=True)


def evaluate_files(classifier: Classifier, files: Sequence[Path], labels: Sequence[int]) -> dict:
    """compute_metrics over the files that decoded, plus accuracy with and without the uncertain flag, and
    the files that could not be classified under "errors". The flag is the model card's rule alone (no localiser
    flags): the card's figures stay those of model 1.2.0 on its own."""
    y_true, y_pred, uncertain, errors = [], [], [], []
    for (path, item), label in zip(classify_files(classifier, files, localise=False), labels, strict=True):
        if item.ok:
            y_true.append(label)
            y_pred.append(item.verdict.label_index)
            uncertain.append(item.verdict.uncertain)
        else:
            errors.append({"path": str(path), "code": item.error.code})
    flagged = np.array(uncertain, dtype=bool)
    correct = np.array(y_true) == np.array(y_pred)
    metrics = compute_metrics(
        np.array(y_true, dtype=np.int64), np.array(y_pred, dtype=np.int64), classifier.model.classes, uncertain=flagged
    )
    metrics["accuracy_when_certain"] = float(correct[~flagged].mean()) if (~flagged).any() else None
    metrics["accuracy_when_uncertain"] = float(correct[flagged].mean()) if flagged.any() else None
    metrics["errors"] = errors
    return metrics
