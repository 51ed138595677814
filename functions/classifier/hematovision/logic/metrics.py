"""Classification metrics, numpy only.

One implementation for `hematovision evaluate` and for the model card written by export/, so the
figures printed by the CLI and the ones stated in the card are computed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _safe_div(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int
) -> np.ndarray:
    """Integer matrix [n_classes, n_classes]; rows = true class, columns = predicted class."""
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} items but y_pred has {pred.size}")
    if true.size and (true.min() < 0 or pred.min() < 0 or true.max() >= n_classes or pred.max() >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    uncertain: Sequence[bool] | np.ndarray | None = None,
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix, n, uncertain fraction.

    Labels are class indices into `classes`. A class with no predictions has precision 0; a class
    with no true samples has recall 0 (and is still counted in the macro average, like
    scikit-learn's `zero_division=0`). `uncertain_fraction` is None when `uncertain` is not given.
    """
    classes = list(classes)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    n = int(matrix.sum())
    correct = int(np.trace(matrix))
    per_class: dict[str, dict] = {}
    f1_scores = []
    for index, name in enumerate(classes):
        true_positive = int(matrix[index, index])
        predicted = int(matrix[:, index].sum())
        support = int(matrix[index, :].sum())
        precision = _safe_div(true_positive, predicted)
        recall = _safe_div(true_positive, support)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        f1_scores.append(f1)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    uncertain_fraction = None
    if uncertain is not None:
        flags = np.asarray(uncertain, dtype=bool).reshape(-1)
        if flags.size != n:
            raise ValueError(f"uncertain has {flags.size} items but there are {n} samples")
        uncertain_fraction = float(flags.mean()) if n else 0.0
    return {
        "accuracy": _safe_div(correct, n),
        "macro_f1": float(np.mean(f1_scores)) if f1_scores else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "n": n,
        "uncertain_fraction": uncertain_fraction,
    }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% for z = 1.96). Valid only for n independent trials: one image
    per cell, not many augmented views of the same cells."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}]")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half_width = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half_width)), min(1.0, float(centre + half_width))
