"""compute_metrics against hand-computed figures (the model card and `evaluate` both rely on it)."""

import numpy as np
import pytest

from hematovision.logic.metrics import compute_metrics, confusion_matrix, wilson_interval

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


def test_wilson_interval_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:857, 81 of 263: Wilson score interval 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_at_the_extremes_and_symmetry():
    z2 = 1.96**2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0))
    low, high = wilson_interval(66, 71)
    assert wilson_interval(5, 71) == pytest.approx((1 - high, 1 - low))
    assert low < 66 / 71 < high


@pytest.mark.parametrize("successes, n", [(1, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_impossible_counts(successes, n):
    with pytest.raises(ValueError):
        wilson_interval(successes, n)
