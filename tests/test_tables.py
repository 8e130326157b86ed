"""Tables from records: the top group bold by a paired test, sign-respecting intervals, checkpoints, the target."""
from __future__ import annotations

import pandas as pd
import pytest

from runners.analysis.experiment import Experiment
from runners.analysis.plots import pareto_front


def test_pareto_front():
    points = [(1.0, 0.5, "cheap"), (2.0, 0.4, "dominated"), (3.0, 0.7, "best"), (4.0, 0.7, "costlier tie")]
    assert [p[2] for p in pareto_front(points)] == ["cheap", "best"]


def _record(method, curve, target_budget="8steps", checkpoints=(0.125, 0.25, 0.5, 1.0), experiment="e"):
    """A real record (from the fixtures), given another method, budget, checkpoints and curve."""
    import dataclasses
    from pathlib import Path

    from runners.store import records as store

    base = store.parse((Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json").read_text())
    point = base.curve[0]
    config = dataclasses.replace(base.config, method=method, budget=target_budget, checkpoints=tuple(checkpoints),
                                 ablate=())
    return base.model_copy(update={
        "config": config, "experiment_id": experiment, "run_id": f"{method}-{experiment}",
        "method": base.method.model_copy(update={"label": method}),
        "curve": [point.model_copy(update={"fraction": f, "steps": st, "val_accuracy": a}) for f, st, a in curve]})


def _with(record, seed, accuracy, seconds):
    import dataclasses

    return record.model_copy(update={
        "config": dataclasses.replace(record.config, seed=seed), "run_id": f"{record.label}-{seed}",
        "metrics": record.metrics.model_copy(update={"accuracy": accuracy}),
        "measurements": record.measurements.model_copy(update={"train_seconds": seconds})})


def test_the_top_group_is_bold_where_overlapping_intervals_would_call_a_tie():
    """b trails a by 0.010-0.014 on every seed: the paired test separates them, though their CIs overlap widely;
    c is within noise of a, so it stays in the top group."""
    from runners.analysis.tables import summarize, to_markdown

    curve = [(0.5, 4, 0.5), (1.0, 8, 0.6)]
    base = {m: _record(m, curve, checkpoints=(0.5, 1.0)) for m in "abc"}
    accs = {"a": [0.60, 0.70, 0.80], "b": [0.590, 0.688, 0.786], "c": [0.62, 0.66, 0.80]}
    records = [_with(base[m], seed, acc, 10.0 + seed) for m in "abc" for seed, acc in enumerate(accs[m])]
    # each clearly above always predicting the majority class (0.2 here), so every row is a candidate
    records = [r.model_copy(update={"metrics": r.metrics.model_copy(update={"majority_baseline": 0.2})})
               for r in records]
    df, cols = summarize(Experiment.of(records))
    row = df.set_index("method")
    assert set(row["beats majority"]) == {"yes"}
    assert row.at["b", "test acc ci_hi"] > row.at["a", "test acc ci_lo"]  # overlapping CIs: the old rule ties
    assert bool(row.at["a", "top group"]) and bool(row.at["c", "top group"]) and not row.at["b", "top group"]
    assert row.at["b", "p vs best (Holm)"] < 0.05
    md = to_markdown(df, cols)
    assert md.count("**") == 4 and "| a " in md and "**0.7000 ± 0.1000 [" in md


def test_a_positive_quantity_gets_an_interval_above_zero():
    from runners.analysis.tables import summarize

    curve = [(1.0, 8, 0.6)]
    base = _record("a", curve, checkpoints=(1.0,))
    records = [_with(base, seed, 0.5, t) for seed, t in enumerate([5.0, 30.0, 250.0])]
    row = summarize(Experiment.of(records))[0].iloc[0]
    assert row["train time (s) ci_lo"] > 0 and row["train time (s) center"] == pytest.approx(
        (5 * 30 * 250) ** (1 / 3))


def test_a_checkpoint_not_reached_on_its_own_is_not_filled_from_a_later_one():
    from runners.analysis.columns import TO_TARGET
    from runners.analysis.tables import summarize

    # 4 steps: 1/8 of the budget is half a step, so the first evaluation (step 1) is the 1/4 checkpoint's
    few = _record("few", [(0.25, 1, 0.4), (0.5, 2, 0.5), (1.0, 4, 0.6)], "4steps")
    many = _record("many", [(0.125, 1, 0.3), (0.25, 2, 0.4), (0.5, 4, 0.5), (1.0, 8, 0.6)])
    df, cols = summarize(Experiment.of([few], target=0.5))
    row = df.iloc[0]
    assert pd.isna(row["val acc @1/8"]) and row["val acc @1/4"] == 0.4 and row["val acc @1/2"] == 0.5
    assert (row[f"{TO_TARGET} lo"], row[TO_TARGET]) == (1, 2)  # reached somewhere in steps (1, 2]
    row = summarize(Experiment.of([many], target=0.5))[0].iloc[0]
    assert (row["val acc @1/8"], row["val acc @1/4"]) == (0.3, 0.4)


def test_the_budget_to_target_column_has_one_name_whatever_the_target(tmp_path):
    from runners.analysis.comparison import write_tables

    runs = tmp_path / "d" / "runs"
    runs.mkdir(parents=True)
    for i, (budget, curve) in enumerate([("8steps", [(0.5, 4, 0.5), (1.0, 8, 0.6)]),
                                         ("16steps", [(0.5, 8, 0.7), (1.0, 16, 0.9)])]):
        r = _record("m", curve, budget, checkpoints=(0.5, 1.0), experiment=f"e{i}")
        (runs / f"m-{i}.json").write_text(r.to_json())
    write_tables(tmp_path, "d")
    df = pd.read_csv(tmp_path / "d" / "comparison.csv")
    assert "budget to target" in df and sorted(df["target val acc"].round(3)) == [0.57, 0.855]
    assert set(df["budget unit"]) == {"steps"}


def test_the_header_names_every_command_whose_runs_are_in_the_table():
    from runners.analysis.headers import header

    a = _record("a", [(1.0, 8, 0.6)], checkpoints=(1.0,)).model_copy(update={"command": "first", "timestamp": "1"})
    b = _record("b", [(1.0, 8, 0.6)], checkpoints=(1.0,)).model_copy(update={"command": "second", "timestamp": "2"})
    assert "- **Command:** `first`" in header([a, a])
    assert "- **Commands** (2, whose runs are in this table): `first`; `second`" in header([b, a])


def test_a_table_of_only_cancelled_runs_says_what_became_of_them():
    import dataclasses

    from runners.analysis.headers import header
    from runners.store.schema import Status

    base = _record("a", [(1.0, 8, 0.6)], checkpoints=(1.0,))
    cancelled = base.model_copy(update={
        "config": dataclasses.replace(base.config, loop=2), "status": Status.CANCELLED, "error": "interrupted",
        "metrics": None, "measurements": None, "device": None, "curve": [], "predictions": None})
    failed = cancelled.model_copy(update={"status": Status.FAILED})
    line = next(x for x in header([cancelled, cancelled, failed]).splitlines() if x.startswith("- **Loop:**"))
    assert line == ("- **Loop:** revision 2; no run of this table got as far as recording what it computed in "
                    "(2 cancelled, 1 failed)")
