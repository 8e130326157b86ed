"""Before training, compare says how long the whole command will take; at the end, how long it did take."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from runners import compare
from runners.planning import estimate
from runners.planning.estimate import Estimate, History
from runners.settings.budget import Budget

FIRST = (r"estimate: 2 run\(s\) × \(\d+ s training \+ \d+ s start, loading and evaluation\) ≈ \d+ s in all "
         r"\(training: a full fine-tuning step of \d+\.\d\d s at batch 16, median of \d+ \(\d+\.\d\d to \d+\.\d\d s\); "
         r"lighter methods are faster; the rest: no earlier runs here yet, so measured: imports \d+\.\d s, loading "
         r"\d+\.\d s, 36 rows evaluated at \d+\.\d\d ms\)")


def test_compare_estimates_what_it_will_run_learns_each_runs_fixed_cost_and_says_how_it_compared(
        tiny_model_dir, tweets_dir, cache_dir, capsys, in_process):
    argv = ["--methods", "head", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--budget", "4steps",
            "--batch-size", "16", "--eval-limit", "12", "--seeds", "0,1", "--quiet", "--skip-serving",
            "--checkpoints", "1/2,1", "--results", str(cache_dir.parent / "results")]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    [line] = [x for x in out if x.startswith("estimate:")]
    assert re.fullmatch(FIRST, line), line  # 12 validation rows at 2 checkpoints, 12 test rows, once each, x2 runs
    assert re.fullmatch(r"estimate \d+ s; took \d+\.\d s for 2 run\(s\)", out[-1]), out[-1]
    [(key, fixed)] = json.loads((cache_dir / estimate.HISTORY).read_text())["fixed_seconds"].items()
    assert key.endswith("| 1 at a time") and len(fixed) == 2 and all(s > 0 for s in fixed)

    assert compare.main(argv) == 0
    said = [x for x in capsys.readouterr().out.splitlines() if x.startswith("estimate")]
    assert said == []  # nothing left to run: nothing to estimate, nothing to compare
    assert compare.main([*argv, "--rerun"]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("estimate:")]
    assert line.endswith("the rest: the median of 2 earlier run(s) here)"), line


@pytest.mark.parametrize("budget, steps", [("8steps", 8), ("1epoch", 15), ("0.5epochs", 8), ("64samples", 4),
                                           ("2000tokens", None), ("1e9flops", None)])
def test_every_budget_unit_becomes_steps(budget, steps):
    lengths = np.full(228, 10)  # 228 training texts of 10 tokens, batches of 16, 2.5e8 FLOPs a step
    expected = steps if steps is not None else {"2000tokens": 2000 / (10 * 16), "1e9flops": 4}[budget]
    assert estimate.steps(Budget.parse(budget), lengths, 16, 2.5e8) == pytest.approx(expected)


def test_each_run_pays_its_fixed_cost_and_runs_go_in_waves_of_slots():
    one = Estimate((4,), train_s=15, fixed_s=45, train_how="t", fixed_how="f")
    assert one.seconds == 4 * 60 and one.upper == one.seconds
    assert one.line() == "estimate: 4 run(s) × (15 s training + 45 s start, loading and evaluation) ≈ 4 min in all " \
                         "(training: t; the rest: f)"
    two = Estimate((4,), 15, 45, slots=2)
    assert two.seconds == 2 * 60 and ", 2 at a time ≈ 2 min in all" in two.line()
    assert Estimate((3,), 15, 45, slots=2).seconds == 2 * 60  # 3 runs on 2 slots: two waves, a run is not split


def test_a_search_says_its_range_if_its_grids_extend():
    # 2 methods × 3 rates × 1 search seed, then 2 methods × 2 seeds; each grid may extend twice, 2 trials a round
    tuned = Estimate((6, 4), 10, 20, slots=2, extension_rounds=2, extension_runs=2, searched=6)
    assert tuned.seconds == (3 + 2) * 30 and tuned.upper == tuned.seconds + 2 * 1 * 30
    line = tuned.line()
    assert "≈ 2 min in all, up to 4 min if the searches extend (6 of them search trials; " in line
    assert "\n" not in line


def test_without_history_the_fixed_cost_is_what_the_probe_measured():
    rows = estimate.eval_rows(validation=100, test=50, checkpoints=4, test_each_checkpoint=False, serving_rows=10)
    assert rows == 100 * 4 + 50 + 10
    assert estimate.eval_rows(100, 50, 4, True, 0) == 100 * 4 + 50 * 5
    assert estimate.fixed_from_probe(imports_s=3, load_s=1, flops_s=0.5, row_s=0.01, rows=rows) == \
        pytest.approx(3 + 1 + 0.5 + 4.6)


def test_the_history_round_trip_keeps_the_latest_and_survives_a_bad_file(tmp_path):
    history = History(tmp_path / "cache")
    assert history.fixed("cpu | m | 1 at a time") is None
    history.add("cpu | m | 1 at a time", [10.0, 30.0])
    history.add("cpu | m | 1 at a time", [20.0])
    history.add("cpu | m | 2 at a time", [99.0])
    assert History(tmp_path / "cache").fixed("cpu | m | 1 at a time") == (20.0, 3)
    history.add("k", [float(i) for i in range(estimate.KEEP + 5)])
    assert history.read()["k"] == [float(i) for i in range(5, estimate.KEEP + 5)]
    history.path.write_text("{not json")
    assert history.fixed("k") is None  # an estimate is no reason to stop a command
    history.add("k", [5.0])
    assert history.fixed("k") == (5.0, 1)


def test_a_runs_fixed_cost_is_its_wall_time_less_its_training():
    def record(ok=True, kind="method", train_s=12.0):
        return SimpleNamespace(ok=ok, method=SimpleNamespace(kind=kind),
                               measurements=SimpleNamespace(train_seconds=train_s))

    assert estimate.fixed_seconds(50.0, record()) == 38.0
    assert estimate.fixed_seconds(50.0, record(ok=False)) is None  # stopped part way
    assert estimate.fixed_seconds(50.0, record(kind="baseline")) is None  # trains no network


def test_the_end_says_how_the_estimate_compared(tmp_path):
    clock = estimate.Clock(History(tmp_path), "k")
    assert clock.summary() is None  # nothing was estimated: nothing to compare
    said = [Estimate((10,), 30, 12), Estimate((4,), 30, 15, extension_rounds=1, extension_runs=1)]
    assert estimate.compared(said, took_s=492.0, runs=14) == "estimate 10 min (up to 11 min); took 8 min 12 s for " \
                                                             "14 run(s)"
