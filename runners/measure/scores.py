"""Scores from a run's predicted class probabilities (ROC-AUC, calibration error), and the compact text form in
which a run record stores its test predictions and probabilities."""
from __future__ import annotations

import base64

import numpy as np
from sklearn.metrics import roc_auc_score

ECE_BINS = 15
ECE_NOTE = f"ECE: {ECE_BINS} equal-width bins of the top-class probability (Guo et al. 2017)"
AUC_NOTE = "ROC-AUC: one-vs-rest, averaged over the classes present in the test labels"


def _check(labels, proba) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(labels), np.asarray(proba, dtype=float)
    if p.ndim != 2 or len(y) != len(p) or p.shape[1] < 2:
        raise ValueError(f"want labels (n,) and probabilities (n, classes >= 2), got {y.shape} and {p.shape}")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must be class indices in [0, {p.shape[1]})")
    return y, p


def roc_auc_ovr(labels, proba, average: str = "macro") -> float:
    """ROC-AUC from predicted probabilities `proba` (n, classes) for integer `labels` (n,), one-vs-rest.

    Each class c present in `labels` scores "label == c" by proba[:, c]; `average` "macro" is the unweighted mean
    over those classes, "weighted" weighs each by its share of the rows. With every class present this equals
    `roc_auc_score(labels, proba, multi_class="ovr")` (and for two classes the AUC of proba[:, 1]), without that
    function's demand that rows sum to 1 (stored float16 probabilities do not, exactly). A class absent from
    `labels` has no positives and no ROC curve, so the mean is over the classes present; NaN when fewer than two are.
    """
    y, p = _check(labels, proba)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    onehot = (y[:, None] == present[None, :]).astype(int)
    return float(roc_auc_score(onehot, p[:, present], average=average))


def roc_auc_ovr_macro(labels, proba) -> float:
    return roc_auc_ovr(labels, proba, "macro")


def classification_metrics(labels, proba) -> dict[str, float]:
    """Every test metric of a classifier from its probabilities, the same for fine-tuned methods and baselines:
    accuracy, macro and weighted F1 of the argmax (every class 0..K-1 counted; an absent, never-predicted one scores
    0), one-vs-rest ROC-AUC macro and weighted (see `roc_auc_ovr`), ECE and the mean cross-entropy (nats)."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    y, p = _check(labels, proba)
    classes = list(range(p.shape[1]))
    predicted = p.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, average="macro", labels=classes, zero_division=0)),
        "weighted_f1": float(f1_score(y, predicted, average="weighted", labels=classes, zero_division=0)),
        "auc_macro": roc_auc_ovr(y, p, "macro"),
        "auc_weighted": roc_auc_ovr(y, p, "weighted"),
        "ece": expected_calibration_error(y, p),
        "eval_loss": float(log_loss(y, _normalised(p), labels=classes)),
    }


def expected_calibration_error(labels, proba, bins: int = ECE_BINS) -> float:
    """Expected calibration error (Guo et al. 2017, "On calibration of modern neural networks", eq. 3).

    Each example's confidence is its highest probability and its prediction that class (the first on a tie).
    Confidences fall into `bins` equal-width bins ((0, 1/bins], (1/bins, 2/bins], ..., ((bins-1)/bins, 1]), and
    ECE = Σ_bins (examples in bin / n) · |accuracy in bin − mean confidence in bin|; empty bins add nothing.
    """
    y, p = _check(labels, proba)
    if not len(y):
        return float("nan")
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y
    edges = np.arange(bins + 1) / bins  # k/bins correctly rounded: 0.6 is the edge 3/5 itself
    which = np.clip(np.digitize(confidence, edges, right=True) - 1, 0, bins - 1)  # right-closed bins
    ece = 0.0
    for b in np.unique(which):
        inside = which == b
        ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def compact_predictions(pred) -> str:
    """Predicted class indices as text for a JSON record: one digit per example when every class is below 10
    (500 examples: 500 characters), else `u8:` and the base64 of one byte per example (classes below 256)."""
    a = np.asarray(pred)
    if a.ndim != 1 or (a.size and (a.min() < 0 or a.max() > 255)):
        raise ValueError("predictions must be a flat array of class indices in [0, 255]")
    if not a.size or a.max() < 10:
        return "".join(map(str, a.tolist()))
    return "u8:" + base64.b64encode(a.astype(np.uint8).tobytes()).decode("ascii")


def expand_predictions(text: str) -> np.ndarray:
    """The class indices `compact_predictions` stored, as an int64 array."""
    if text.startswith("u8:"):
        return np.frombuffer(base64.b64decode(text[3:]), dtype=np.uint8).astype(np.int64)
    return np.array([int(ch) for ch in text], dtype=np.int64)


def compact_probabilities(proba) -> str:
    """Class probabilities (n, classes) as `f16:<classes>:` and the base64 of little-endian float16 values:
    2 bytes a value (500 examples × 3 classes: 4,000 characters), about 3 significant digits, so scores computed
    from the stored form may differ from the run's own in the third digit."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"want probabilities of shape (n, classes), got {p.shape}")
    return f"f16:{p.shape[1]}:" + base64.b64encode(p.astype("<f2").tobytes()).decode("ascii")


def expand_probabilities(text: str) -> np.ndarray:
    """The (n, classes) float64 array `compact_probabilities` stored."""
    kind, classes, data = text.split(":", 2)
    if kind != "f16":
        raise ValueError(f"unknown probability encoding {kind!r}")
    return np.frombuffer(base64.b64decode(data), dtype="<f2").astype(np.float64).reshape(-1, int(classes))


def _normalised(p: np.ndarray) -> np.ndarray:
    """Rows that sum to 1 exactly (a float32 softmax is off by ~1e-7, which scikit-learn's log loss warns of)."""
    p = np.clip(p, 1e-12, 1)
    return p / p.sum(axis=1, keepdims=True)


def stored_predictions(labels, proba, rows_sha256: str) -> dict:
    """The `predictions` part of a record: true and predicted labels and the probabilities, compact."""
    y, p = _check(labels, proba)
    return {"rows_sha256": rows_sha256, "labels": compact_predictions(y), "predicted": compact_predictions(p.argmax(1)),
            "proba": compact_probabilities(p)}
