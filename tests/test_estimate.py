"""Before training, compare says how long the whole command will take."""
from __future__ import annotations

import re

import numpy as np
import pytest

from runners import compare, estimate
from runners.budget import Budget

LINE = (r"estimate: 2 run\(s\) × \d+ s of training ≈ \d+ s in all, plus loading and evaluation "
        r"\(from a measured full fine-tuning step of \d\.\d\d s at batch 16; methods that train fewer weights are "
        r"faster\)")


def test_compare_estimates_what_it_will_run_and_nothing_once_done(tiny_model_dir, tweets_dir, cache_dir, capsys,
                                                                  in_process):
    argv = ["--methods", "head", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--budget", "4steps",
            "--batch-size", "16", "--eval-limit", "12", "--seeds", "0,1", "--quiet",
            "--results", str(cache_dir.parent / "results")]
    assert compare.main(argv) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("estimate:")]
    assert len(lines) == 1 and re.fullmatch(LINE, lines[0]), lines
    assert compare.main(argv) == 0
    assert "estimate:" not in capsys.readouterr().out  # nothing left to run, nothing to estimate


@pytest.mark.parametrize("budget, steps", [("8steps", 8), ("1epoch", 15), ("0.5epochs", 8), ("64samples", 4),
                                           ("2000tokens", None), ("1e9flops", None)])
def test_every_budget_unit_becomes_steps(budget, steps):
    lengths = np.full(228, 10)  # 228 training texts of 10 tokens, batches of 16, 2.5e8 FLOPs a step
    expected = steps if steps is not None else {"2000tokens": 2000 / (10 * 16), "1e9flops": 4}[budget]
    assert estimate._steps(Budget.parse(budget), lengths, 16, 2.5e8) == pytest.approx(expected)


def test_a_time_budget_is_its_own_estimate():
    line = estimate.describe(3, Budget.parse("2m"), "unused", "unused", 2, 0, 32, None)
    assert line == ("estimate: 3 run(s) × 2 min of training ≈ 6 min in all, plus loading and evaluation "
                    "(from the time budget)")
