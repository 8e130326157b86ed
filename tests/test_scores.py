"""ROC-AUC and calibration error against hand computations; stored predictions survive the round trip."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from runners.measure.scores import (
    compact_predictions,
    compact_probabilities,
    expand_predictions,
    expand_probabilities,
    expected_calibration_error,
    roc_auc_ovr_macro,
)

# six examples, three classes; each row sums to 1
LABELS = [0, 0, 1, 1, 2, 2]
PROBA = [[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.1, 0.2, 0.7], [0.4, 0.5, 0.1]]


def test_binary_auc_is_the_positive_column():
    # positives score 0.35, 0.8; negatives 0.1, 0.4: 3 of the 4 pairs are ordered right
    proba = [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]]
    assert roc_auc_ovr_macro([0, 0, 1, 1], proba) == pytest.approx(0.75)


def test_multiclass_auc_by_hand():
    # one-vs-rest, share of (positive, negative) pairs ordered right, a tie counting 1/2, out of 2·4 pairs:
    # class 0: 0.6 beats all 4, 0.3 beats 0.2 and 0.1 -> 6/8; class 1: 0.7 beats all 4, 0.2 ties one 0.2 -> 4.5/8;
    # class 2: 0.7 beats all 4, 0.1 ties two 0.1 -> 5/8. Macro: (0.75 + 0.5625 + 0.625) / 3
    expected = (0.75 + 0.5625 + 0.625) / 3
    assert roc_auc_ovr_macro(LABELS, PROBA) == pytest.approx(expected)
    assert roc_auc_score(LABELS, PROBA, multi_class="ovr", average="macro") == pytest.approx(expected)


def test_auc_over_the_classes_present():
    # class 2 never occurs: class 0 gets 3/4, class 1 gets 2/4
    assert roc_auc_ovr_macro(LABELS[:4], PROBA[:4]) == pytest.approx((0.75 + 0.5) / 2)
    assert np.isnan(roc_auc_ovr_macro([1, 1], PROBA[:2]))
    with pytest.raises(ValueError):
        roc_auc_ovr_macro([0, 3], PROBA[:2])


def test_ece_by_hand():
    proba = [[0.95, 0.05], [0.15, 0.85], [0.7, 0.3], [0.35, 0.65], [0.55, 0.45]]
    labels = [0, 0, 0, 1, 1]
    # 5 bins: (0.8, 1]: confidences 0.95 (right), 0.85 (wrong): 2/5 · |0.5 - 0.9| = 0.16
    #         (0.6, 0.8]: 0.7 (right), 0.65 (right): 2/5 · |1 - 0.675| = 0.13
    #         (0.4, 0.6]: 0.55 (wrong): 1/5 · |0 - 0.55| = 0.11
    assert expected_calibration_error(labels, proba, bins=5) == pytest.approx(0.40)


def test_ece_bins_are_closed_on_the_right():
    # 0.6 belongs to (0.4, 0.6] with 0.55: accuracy 1/2, confidence 0.575 -> 0.075 (0.475 were 0.6 a bin up)
    assert expected_calibration_error([0, 1], [[0.6, 0.4], [0.55, 0.45]], bins=5) == pytest.approx(0.075)
    assert expected_calibration_error([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == pytest.approx(0.0)


def test_predictions_round_trip():
    pred = np.random.default_rng(0).integers(0, 3, size=500)
    text = compact_predictions(pred)
    assert len(text) == 500 and text[:5] == "".join(map(str, pred[:5]))
    assert np.array_equal(expand_predictions(text), pred)
    many = np.array([0, 11, 255, 7])
    assert compact_predictions(many).startswith("u8:") and np.array_equal(expand_predictions(compact_predictions(many)),
                                                                           many)
    assert len(expand_predictions(compact_predictions(np.array([], dtype=int)))) == 0
    with pytest.raises(ValueError):
        compact_predictions(np.array([256]))


def test_probabilities_round_trip_to_float16():
    proba = np.random.default_rng(1).dirichlet([1, 1, 1], size=500)
    text = compact_probabilities(proba)
    assert text.startswith("f16:3:") and len(text) == len("f16:3:") + 4000
    back = expand_probabilities(text)
    assert back.shape == (500, 3) and np.allclose(back, proba, atol=5e-4)
    assert roc_auc_ovr_macro(LABELS, expand_probabilities(compact_probabilities(PROBA))) == pytest.approx(
        roc_auc_ovr_macro(LABELS, PROBA))
