"""Test metrics from predicted class probabilities, shared by baselines and fine-tuned methods (scikit-learn)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score


def metrics(labels: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """Accuracy, macro and weighted F1 of the argmax, one-vs-rest AUC-ROC (macro and weighted) and log loss.

    `proba` is n × K, column k for label k. F1 counts every class 0..K-1 (an absent, never-predicted one scores
    0, as in runners.train.evaluate). AUC is averaged over the classes present in `labels`, since a class with no
    positive rows has no ROC curve; with all present this is scikit-learn's `multi_class="ovr"`. With fewer than
    two classes present no class has negatives either, and both AUCs are None (records hold no NaN).
    """
    labels, proba = np.asarray(labels), np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(labels):
        raise ValueError(f"proba must be n × K with n = {len(labels)} rows, got shape {proba.shape}")
    classes = list(range(proba.shape[1]))
    predicted = proba.argmax(axis=1)
    present = np.unique(labels)
    auc: dict[str, float | None] = {"auc_macro": None, "auc_weighted": None}
    if len(present) >= 2:
        # one indicator column per present class: scikit-learn's ovr path, without its check that the columns
        # passed sum to 1 (they do not once an absent class's column is left out)
        onehot = (labels[:, None] == present[None, :]).astype(int)
        for average in ("macro", "weighted"):
            auc[f"auc_{average}"] = float(roc_auc_score(onehot, proba[:, present], average=average))
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=classes, zero_division=0)),
        "weighted_f1": float(f1_score(labels, predicted, average="weighted", labels=classes, zero_division=0)),
        **auc,
        "log_loss": float(log_loss(labels, proba, labels=classes)),  # mean cross-entropy, nats
    }
