"""Table statistics: confidence intervals, wins only beyond the uncertainty, the Pareto front."""
from __future__ import annotations

import pandas as pd
import pytest

from runners.plots import pareto_front
from runners.tables import Column, _at, _winner, stats, to_markdown


def test_stats_use_the_t_distribution():
    s = stats([0.5, 0.6, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["sd"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3 ** 0.5  # t(0.975, df=2)
    assert (s["lo"], s["hi"]) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert stats([0.5])["sd"] is None and stats([])["mean"] is None


def frame(means, sds, n=3):
    rows = []
    for label, mean, sd in zip("abc", means, sds):
        s = stats([mean - sd, mean, mean + sd][:n]) if n > 1 else stats([mean])
        rows.append({"method": label, "seeds": "0;1;2", "status": "ok", "acc": s["mean"], "acc sd": s["sd"],
                     "acc ci_lo": s["lo"], "acc ci_hi": s["hi"]})
    return pd.DataFrame(rows)


def test_a_win_must_clear_the_confidence_intervals():
    assert _winner(frame([0.9, 0.6, 0.5], [0.01, 0.01, 0.01]), "acc", "↑") == 0
    assert _winner(frame([0.61, 0.60, 0.5], [0.05, 0.05, 0.01]), "acc", "↑") is None  # a tie stays plain
    assert _winner(frame([0.9, 0.6, 0.5], [0.0, 0.0, 0.0], n=1), "acc", "↑") is None  # one seed: no CI, no win
    assert _winner(frame([1.0, 5.0, 9.0], [0.1, 0.1, 0.1]), "acc", "↓") == 0


def test_markdown_bolds_only_the_clear_winner():
    cols = {"acc": Column(_at(("x",)), "↑", "{:.2f}")}
    md = to_markdown(frame([0.9, 0.6, 0.5], [0.01, 0.01, 0.01]), cols)
    assert "**0.90 ± 0.01 [" in md and md.count("**") == 2 and "acc ↑" in md


def test_pareto_front():
    points = [(1.0, 0.5, "cheap"), (2.0, 0.4, "dominated"), (3.0, 0.7, "best"), (4.0, 0.7, "costlier tie")]
    assert [p[2] for p in pareto_front(points)] == ["cheap", "best"]


def _record(method, curve, target_budget="8steps", checkpoints=(0.125, 0.25, 0.5, 1.0), experiment="e"):
    """A real record (from the fixtures), given another method, budget, checkpoints and curve."""
    import dataclasses
    from pathlib import Path

    from runners import record

    base = record.parse((Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json").read_text())
    point = base.curve[0]
    config = dataclasses.replace(base.config, method=method, budget=target_budget, checkpoints=tuple(checkpoints))
    return base.model_copy(update={
        "config": config, "experiment_id": experiment, "run_id": f"{method}-{experiment}",
        "method": base.method.model_copy(update={"label": method}),
        "curve": [point.model_copy(update={"fraction": f, "steps": st, "val_accuracy": a}) for f, st, a in curve]})


def test_a_checkpoint_not_reached_on_its_own_is_not_filled_from_a_later_one():
    from runners.tables import TO_TARGET, summarize

    # 4 steps: 1/8 of the budget is half a step, so the first evaluation (step 1) is the 1/4 checkpoint's
    few = _record("few", [(0.25, 1, 0.4), (0.5, 2, 0.5), (1.0, 4, 0.6)], "4steps")
    many = _record("many", [(0.125, 1, 0.3), (0.25, 2, 0.4), (0.5, 4, 0.5), (1.0, 8, 0.6)])
    df, cols = summarize([few], target=0.5)
    row = df.iloc[0]
    assert pd.isna(row["val acc @1/8"]) and row["val acc @1/4"] == 0.4 and row["val acc @1/2"] == 0.5
    assert row[TO_TARGET] == 2  # steps at the first checkpoint reaching 0.5
    row = summarize([many], target=0.5)[0].iloc[0]
    assert (row["val acc @1/8"], row["val acc @1/4"]) == (0.3, 0.4)


def test_the_budget_to_target_column_has_one_name_whatever_the_target(tmp_path):
    from runners.tables import write_tables

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
