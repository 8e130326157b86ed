"""Classical baselines: the contract over every registered one, specs, and the metrics from probabilities."""
from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

import baselines
from baselines import parse_spec
from baselines.base import INSTALL_HINT, Baseline, register
from methods import SpecError
from runners.measure.scores import classification_metrics as metrics
from runners.measure.scores import expected_calibration_error

HAS_GENSIM = importlib.util.find_spec("gensim") is not None
NAMES = [
    pytest.param(name, marks=pytest.mark.skipif(bool(cls.missing()),
                                             reason=f"{name} needs {', '.join(cls.missing())}: {INSTALL_HINT}"))
    for name, cls in baselines.registered().items()
]
needs_gensim = pytest.mark.skipif(not HAS_GENSIM, reason=f"gensim is not installed: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def tweets(tweets_dir) -> dict[str, pd.DataFrame]:
    train = pd.read_parquet(tweets_dir / "train.parquet")
    return {"train": train[train.text != ""], "test": pd.read_parquet(tweets_dir / "test.parquet")}


def fit(name: str, train: pd.DataFrame, seed: int = 0, **kwargs) -> Baseline:
    baseline = parse_spec(name).baseline
    baseline.fit(train.text.tolist(), train.label.to_numpy(), seed=seed, **kwargs)
    return baseline


@pytest.fixture(scope="module")
def fitted(tweets):
    """Each baseline fitted once on the fixture's train rows, with its test probabilities."""
    cache: dict[str, tuple[Baseline, np.ndarray]] = {}

    def get(name: str) -> tuple[Baseline, np.ndarray]:
        if name not in cache:
            baseline = fit(name, tweets["train"])
            cache[name] = baseline, baseline.predict_proba(tweets["test"].text.tolist())
        return cache[name]

    return get


def test_registered_names():
    assert set(baselines.registered()) == {"tfidf", "w2v-logreg", "w2v-svm", "w2v-rf"}


@pytest.mark.parametrize("name", NAMES)
def test_fit_predicts_probabilities_in_label_order(name, fitted, tweets):
    baseline, proba = fitted(name)
    assert proba.shape == (len(tweets["test"]), 3)
    assert (proba >= 0).all() and np.allclose(proba.sum(axis=1), 1)
    assert baseline.fit_seconds > 0 and baseline.predict_seconds > 0
    assert baseline.describe() == dataclasses.asdict(baseline.Params())
    assert metrics(tweets["test"].label.to_numpy(), proba)["accuracy"] > 1 / 3  # learned something from 240 rows


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_probabilities(name, fitted, tweets):
    again = fit(name, tweets["train"]).predict_proba(tweets["test"].text.tolist())
    np.testing.assert_array_equal(again, fitted(name)[1])


@pytest.mark.parametrize("name", NAMES)
def test_metrics_of_a_baseline_are_sklearns(name, fitted, tweets):
    labels, proba = tweets["test"].label.to_numpy(), fitted(name)[1]
    predicted = proba.argmax(axis=1)
    assert metrics(labels, proba) == pytest.approx({
        "accuracy": accuracy_score(labels, predicted),
        "macro_f1": f1_score(labels, predicted, average="macro"),
        "weighted_f1": f1_score(labels, predicted, average="weighted"),
        "auc_macro": roc_auc_score(labels, proba, multi_class="ovr", average="macro"),
        "auc_weighted": roc_auc_score(labels, proba, multi_class="ovr", average="weighted"),
        "ece": expected_calibration_error(labels, proba),
        "eval_loss": log_loss(labels, proba),
    }, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_a_class_missing_from_train_gets_a_zero_column(name, tweets):
    train = tweets["train"][tweets["train"].label != 2]
    proba = fit(name, train, num_labels=3).predict_proba(tweets["test"].text.tolist())
    assert proba.shape == (len(tweets["test"]), 3)
    assert (proba[:, 2] == 0).all() and np.allclose(proba.sum(axis=1), 1)


# A tiny hand fixture: 3 classes, 8 rows, with ties and a wrong prediction or two.
LABELS = np.array([0, 0, 1, 1, 1, 2, 2, 0])
PROBA = np.array([[.7, .2, .1], [.4, .5, .1], [.2, .6, .2], [.1, .8, .1],
                  [.3, .3, .4], [.1, .2, .7], [.2, .2, .6], [.5, .25, .25]])


def test_metrics_match_sklearn_on_a_tiny_fixture():
    got = metrics(LABELS, PROBA)
    predicted = PROBA.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(accuracy_score(LABELS, predicted))
    assert got["macro_f1"] == pytest.approx(f1_score(LABELS, predicted, average="macro"))
    assert got["weighted_f1"] == pytest.approx(f1_score(LABELS, predicted, average="weighted"))
    assert got["auc_macro"] == pytest.approx(roc_auc_score(LABELS, PROBA, multi_class="ovr", average="macro"))
    assert got["auc_weighted"] == pytest.approx(roc_auc_score(LABELS, PROBA, multi_class="ovr", average="weighted"))
    assert got["eval_loss"] == pytest.approx(log_loss(LABELS, PROBA))


def test_binary_auc_is_the_plain_auc():
    labels, p1 = np.array([0, 1, 1, 0, 1]), np.array([.2, .7, .4, .5, .9])
    got = metrics(labels, np.stack([1 - p1, p1], axis=1))
    assert got["auc_macro"] == pytest.approx(roc_auc_score(labels, p1))
    assert got["auc_weighted"] == pytest.approx(roc_auc_score(labels, p1))


def test_auc_averages_over_the_classes_present_when_one_is_absent():
    keep = LABELS != 2  # class 2 has no test row, though it has a probability column
    labels, proba = LABELS[keep], PROBA[keep]
    per_class = [roc_auc_score(labels == k, proba[:, k]) for k in (0, 1)]
    support = [np.sum(labels == k) for k in (0, 1)]
    got = metrics(labels, proba)
    assert got["auc_macro"] == pytest.approx(np.mean(per_class))
    assert got["auc_weighted"] == pytest.approx(np.average(per_class, weights=support))
    predicted = proba.argmax(axis=1)  # F1 still counts class 2 (as 0: never true, never predicted)
    assert got["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro", labels=[0, 1, 2],
                                                     zero_division=0))


def test_auc_is_nan_with_a_single_class_present():  # a record stores it as null
    got = metrics(np.array([1, 1, 1]), PROBA[:3])
    assert np.isnan(got["auc_macro"]) and np.isnan(got["auc_weighted"])
    assert got["accuracy"] == pytest.approx(2 / 3)


def test_spec_override_changes_the_fitted_model(tweets):
    baseline = fit("tfidf:C=4", tweets["train"])
    assert baseline.params.C == 4.0 and baseline.model.named_steps["classifier"].C == 4.0
    assert parse_spec("tfidf:C=4").label == "tfidf:C=4"


@needs_gensim
def test_w2v_specs_are_typed():
    assert parse_spec("w2v-svm:C=2").baseline.params.C == 2.0
    assert parse_spec("w2v-rf:trees=50:window=3").baseline.describe()["trees"] == 50
    with pytest.raises(SpecError, match="window must be >= 1"):
        parse_spec("w2v-svm:window=0")


@pytest.mark.parametrize("spec, says", [
    ("tfidf:c=4", "tfidf:c=4: unknown parameter 'c' for tfidf. Allowed: C, word_max_n, char_min_n,"),
    ("tfidf:min_dff=3", "Did you mean 'min_df'?"),
    ("tfidf:C=abc", "tfidf:C=abc: C='abc' is not a valid float"),
    ("tfidf:C=0", "C must be > 0"),
    ("tfidf:C", "expected key=value"),
    ("tfidf:C=1:C=2", "'C' given twice"),
    ("tfdif", "unknown baseline 'tfdif'. Did you mean 'tfidf'?"),
])
def test_bad_specs_are_one_line_errors(spec, says):
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_w2v_without_gensim_says_how_to_install(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else find_spec(name, *a))
    with pytest.raises(SpecError, match=r"^w2v-logreg needs gensim: pip install -e '\.\[baselines\]'$"):
        parse_spec("w2v-logreg")
    assert parse_spec("tfidf").name == "tfidf"  # scikit-learn alone


@pytest.mark.parametrize("name, error", [("W2V", ValueError), ("lora", ValueError), ("tfidf", ValueError)])
def test_register_rejects_bad_and_taken_names(name, error):
    with pytest.raises(error):
        register(name)(type("Dummy", (Baseline,), {"build": lambda self, seed: None}))


@needs_gensim
def test_word_vectors_come_from_train_texts_only():
    from baselines._vectors import MeanWordVectors

    features = MeanWordVectors(vector_size=8, seed=0).fit(["good day", "bad day"] * 5)
    out = features.transform(["good day", "zzzunseen", ""])
    assert out.shape == (3, 8) and out.dtype == np.float64
    assert out[0].any() and not out[1].any() and not out[2].any()  # unknown words and empty texts: zeros
