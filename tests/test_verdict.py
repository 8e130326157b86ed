"""The verdict and the table from records: never crowning a classifier that always predicts one class, saying when
no method beats it, and saying "undetermined" where no test applies."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runners.analysis.experiment import Experiment
from runners.analysis.section import render
from runners.analysis.tables import summarize
from runners.analysis.verdict import accuracy_group, majority_reference, sentences
from runners.measure.scores import stored_predictions
from runners.store import records as store
from runners.store import schema as record

BASE = store.parse((Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json").read_text())
TRUTH = np.array([1] * 41 + [0] * 28 + [2] * 31)  # 100 test rows; 'neutral' (1) is the majority class


def run(label: str, seed: int, predicted: np.ndarray | None, accuracy: float | None = None) -> record.Record:
    """A reported run of `label` on `seed` whose test predictions are `predicted` (None: none stored)."""
    import dataclasses

    data = {**BASE.data, "class_counts": {"train": [113, 162, 125], "test": [28, 41, 31]}}
    acc = float((predicted == TRUTH).mean()) if predicted is not None else accuracy
    proba = np.eye(3)[predicted] * 0.8 + 0.2 / 3 if predicted is not None else None
    return BASE.model_copy(update={
        "config": dataclasses.replace(BASE.config, method=label, seed=seed, ablate=()), "run_id": f"{label}-{seed}",
        "method": BASE.method.model_copy(update={"label": label}), "data": data,
        "metrics": BASE.metrics.model_copy(update={"accuracy": acc, "majority_baseline": 0.41}),
        "predictions": None if predicted is None else record.Predictions(
            **stored_predictions(TRUTH, proba, "rows"))})


def constant(cls: int = 1) -> np.ndarray:
    return np.full(len(TRUTH), cls)


def better(right: int) -> np.ndarray:
    """Right on the majority class's rows and on the first `right` rows of the others."""
    out = constant()
    out[41:41 + right] = TRUTH[41:41 + right]
    return out


def test_the_majority_reference_is_named_and_scored_from_the_records():
    ref = majority_reference([run("head", 0, constant())])
    assert ref.name == "always predicting 'neutral'" and ref.accuracy == 0.41
    assert ref.correct.mean() == 0.41  # the stored test labels against the constant prediction
    old = run("head", 0, constant()).model_copy(update={"data": BASE.data})  # before class counts were kept
    assert majority_reference([old]).name == "always predicting the majority class"


def test_no_method_that_always_predicts_one_class_is_crowned():
    """The issue's trial: head and lora both predict 'neutral' (almost) everywhere, on 2 seeds, with identical
    differences: the old verdict called head best and lora significantly worse (a t-test with p = 0)."""
    records = [run("head", s, better(1)) for s in (0, 1)] + [run("lora", s, constant(2)) for s in (0, 1)]
    group = accuracy_group(records)
    assert group.best is None and group.members == () and group.below_reference == ["head", "lora"]
    said = sentences(Experiment.of(records))
    assert said[0].startswith("No method beats always predicting 'neutral' (test accuracy 0.410)")
    assert not any("is the best method" in s for s in said)
    text, df = render(Experiment.of(records))
    row = df.set_index("method")
    assert list(row["beats majority"]) == ["no", "no"] and not row["top group"].any()
    assert "no better than always predicting 'neutral'" in text
    assert not any("**" in line for line in text.splitlines() if line.startswith("|"))  # nothing bold


def test_a_method_that_beats_it_is_ranked_and_one_that_does_not_is_marked_and_never_best():
    records = [run("lora", s, better(40 + s)) for s in (0, 1, 2)] + [run("head", s, constant()) for s in (0, 1, 2)]
    group = accuracy_group(records)
    assert group.best == "lora" and group.below_reference == ["head"]
    said = " ".join(sentences(Experiment.of(records)))
    assert "lora is the only method that beats always predicting 'neutral'" in said
    assert "head is no better than always predicting 'neutral' (test accuracy 0.410) by the same tests" in said
    text, _ = render(Experiment.of(records))
    assert "| vs majority class" in text and "no better than always predicting 'neutral' (p 1)" in text
    assert "beats always predicting 'neutral' (test accuracy 0.4100) on every seed" in text  # the footer


def test_undetermined_when_no_test_applies():
    """One seed and no stored predictions: neither the seeds nor the test rows can tell anything apart."""
    records = [run("lora", 0, None, accuracy=0.62), run("head", 0, None, accuracy=0.55)]
    said = sentences(Experiment.of(records))
    assert said[0] == ("Undetermined: no test can tell whether any method beats always predicting 'neutral' (test "
                       "accuracy 0.410) here (one seed and no stored predictions), so none is ranked or "
                       "recommended.")
    assert not any("With one seed, only the test rows" in s for s in said)  # no test rows were there to compare
    df, _ = summarize(Experiment.of(records))
    assert set(df["beats majority"]) == {"undetermined"}


def test_few_seeds_are_said_in_words():
    records = [run("lora", s, better(40 + s)) for s in (0, 1)] + [run("dora", s, better(39 + 2 * s)) for s in (0, 1)]
    said = " ".join(sentences(Experiment.of(records)))
    assert "tied" in said and "With 2 seeds, a gap counts only once it is 12.7 times its standard error" in said
