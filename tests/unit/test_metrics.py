"""compute_metrics against hand-computed figures (the model card and `evaluate` both rely on it)."""

import numpy as np
import pytest

from hematovision.logic.metrics import compute_metrics, confusion_matrix

CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]


def test_hand_computed_example():
    y_true = [0, 0, 0, 1, 1, 2, 3, 3]
    y_pred = [0, 0, 3, 1, 2, 2, 3, 0]
    m = compute_metrics(y_true, y_pred, CLASSES, uncertain=[0, 1, 0, 0, 0, 0, 1, 1])
    assert m["n"] == 8
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["confusion_matrix"] == [[2, 0, 0, 1], [0, 1, 1, 0], [0, 0, 1, 0], [1, 0, 0, 1]]
    eos = m["per_class"]["EOSINOPHIL"]
    assert eos["precision"] == pytest.approx(2 / 3) and eos["recall"] == pytest.approx(2 / 3)
    assert eos["support"] == 3
    mono = m["per_class"]["MONOCYTE"]
    assert mono["precision"] == pytest.approx(0.5) and mono["recall"] == 1.0
    assert mono["f1"] == pytest.approx(2 / 3)
    f1s = [2 / 3, 2 / 3, 2 / 3, 0.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1s))
    assert m["uncertain_fraction"] == pytest.approx(3 / 8)


def test_perfect_and_empty_classes():
    m = compute_metrics(np.array([0, 1, 1]), np.array([0, 1, 1]), CLASSES)
    assert m["accuracy"] == 1.0
    assert m["uncertain_fraction"] is None
    # classes without support or predictions score 0 and still count in the macro average
    assert m["per_class"]["MONOCYTE"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(0.5)


def test_empty_input():
    m = compute_metrics([], [], CLASSES, uncertain=[])
    assert m["n"] == 0 and m["accuracy"] == 0.0 and m["uncertain_fraction"] == 0.0


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        compute_metrics([0, 1], [0], CLASSES)
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 1], 4)
    with pytest.raises(ValueError):
        compute_metrics([0, 1], [0, 1], CLASSES, uncertain=[True])


def test_json_serialisable():
    import json

    json.dumps(compute_metrics(np.array([0, 3]), np.array([3, 3]), CLASSES, uncertain=np.array([True, False])))
