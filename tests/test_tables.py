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
