"""The statistics core on constructed inputs with answers worked out by hand: intervals, Holm, the top group,
budget to target."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runners.stats import (
    LOG_CI,
    MCNEMAR,
    PAIRED_T,
    UNTESTABLE,
    holm,
    mean_ci,
    reach_interval,
    reach_summary,
    top_group,
)

T2 = 4.302652729911275  # t(0.975, df=2), as printed in t tables (4.303)
T1 = 12.706204736174705  # t(0.975, df=1) (12.706)


def p_t2(t: float) -> float:
    """Two-sided p-value of a t statistic with 2 degrees of freedom, in closed form: the t(2) CDF is
    1/2 + t / (2·sqrt(2 + t²)), so p = 1 - |t| / sqrt(2 + t²)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def seeds(*values: float) -> dict[int, float]:
    return dict(enumerate(values))


A = (0.70, 0.80, 0.90)  # a method that varies a lot across seeds


def minus(values, d) -> dict[int, float]:
    return seeds(*(v - x for v, x in zip(values, d)))


# ---- intervals


def test_the_t_interval_of_the_mean():
    s = mean_ci([0.7, 0.8, 0.9])
    half = T2 * 0.1 / math.sqrt(3)
    assert (s.n, s.mean, s.sd, s.center) == (3, pytest.approx(0.8), pytest.approx(0.1), pytest.approx(0.8))
    assert (s.lo, s.hi) == (pytest.approx(0.8 - half), pytest.approx(0.8 + half))


def test_a_positive_quantity_gets_the_log_scale_interval_of_its_geometric_mean():
    s = mean_ci([10.0, 40.0], positive=True)
    # logs 10 and 40: centre log 20, sd log(4)/√2, half-width t·log(4)/2 = log(2^t): the interval is 20 ×/÷ 2^t
    assert s.kind == LOG_CI and s.mean == 25.0 and s.center == pytest.approx(20.0)
    assert (s.lo, s.hi) == (pytest.approx(20 / 2 ** T1), pytest.approx(20 * 2 ** T1))
    times = [5.0, 30.0, 250.0]  # a skewed train time: the t-interval goes below zero, the log one cannot
    assert mean_ci(times).lo < 0 < mean_ci(times, positive=True).lo < min(times)


def test_one_value_has_no_interval_and_missing_values_are_left_out():
    s = mean_ci([0.5, None, float("nan")])
    assert (s.n, s.mean, s.sd, s.lo, s.hi) == (1, 0.5, None, None, None)
    assert mean_ci([]).mean is None
    with pytest.raises(ValueError, match="> 0"):
        mean_ci([0.0, 1.0], positive=True)


# ---- Holm


def test_holm_on_the_published_example():
    # Wikipedia, "Holm–Bonferroni method", Example: four hypotheses with p = 0.01, 0.04, 0.03, 0.005 at α = 0.05;
    # H1 and H4 are rejected. Adjusted: 4·0.005, 3·0.01, 2·0.03, max(2·0.03, 1·0.04).
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted < 0.05) == [True, False, False, True]


def test_holm_by_hand_and_its_edges():
    # sorted 0.005 0.01 0.03 0.04 0.07 0.20, times 6 5 4 3 2 1: 0.03 0.05 0.12 0.12 0.14 0.20
    assert holm([0.01, 0.04, 0.20, 0.03, 0.005, 0.07]) == pytest.approx([0.05, 0.12, 0.20, 0.12, 0.03, 0.14])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, then kept monotone
    assert holm([0.02]) == pytest.approx([0.02]) and len(holm([])) == 0
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


def test_holm_agrees_with_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = np.random.default_rng(0).uniform(0, 0.2, size=12)
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


# ---- the top group


def test_a_paired_test_separates_what_overlapping_intervals_cannot():
    # B is 0.010-0.014 below A on every seed while both move by 0.1 across seeds
    rows = {"A": seeds(*A), "B": minus(A, (0.010, 0.012, 0.014))}
    a, b = mean_ci(rows["A"].values()), mean_ci(rows["B"].values())
    assert a.lo < b.hi  # the 95% CIs overlap widely: a non-overlapping-CI rule calls this a tie
    g = top_group(rows)
    c = g.comparisons["B"]
    # differences 0.010, 0.012, 0.014: mean 0.012, sd 0.002, t = 0.012 / (0.002/√3) = 6√3
    assert (c.test, c.n, c.difference) == (PAIRED_T, 3, pytest.approx(0.012))
    assert c.p == pytest.approx(p_t2(6 * math.sqrt(3)), rel=1e-6) and c.p < 0.01 and c.worse
    assert g.best == "A" and g.members == ("A",) and g.winner == "A"


def test_a_paired_test_calls_a_tie():
    g = top_group({"A": seeds(*A), "B": minus(A, (0.01, 0.02, 0.03))})  # t = 0.02 / (0.01/√3) = 2√3
    assert g.comparisons["B"].p == pytest.approx(p_t2(2 * math.sqrt(3)), rel=1e-6)  # 0.074
    assert g.members == ("A", "B") and g.winner is None
    g = top_group({"A": seeds(0.80, 0.82, 0.78), "B": seeds(0.81, 0.80, 0.79)})  # differences of both signs
    assert not g.comparisons["B"].worse and g.members == ("A", "B")


def test_holm_keeps_a_row_that_one_test_alone_would_drop():
    d_b, d_c, d_d = (0.010, 0.012, 0.014), (0.0045, 0.0065, 0.0085), (0.01, 0.02, 0.03)
    g = top_group({"A": seeds(*A), "B": minus(A, d_b), "C": minus(A, d_c), "D": minus(A, d_d)})
    raw = {"B": p_t2(6 * math.sqrt(3)), "C": p_t2(0.0065 * math.sqrt(3) / 0.002), "D": p_t2(2 * math.sqrt(3))}
    assert raw["B"] < raw["C"] < 0.05 < raw["D"]  # 0.009, 0.030, 0.074
    # Holm over 3: B 3·0.009 = 0.027 (worse); C 2·0.030 = 0.060 (kept); D max(0.060, 0.074)
    expected = {"B": 3 * raw["B"], "C": 2 * raw["C"], "D": raw["D"]}
    for label, c in g.comparisons.items():
        assert (c.p, c.p_adjusted) == (pytest.approx(raw[label], rel=1e-6), pytest.approx(expected[label], rel=1e-6))
    assert g.members == ("A", "C", "D")
    assert "paired t-test" in g.footer and "Holm-corrected over 3 comparisons" in g.footer and "α = 0.05" in g.footer


def test_lower_is_better_and_a_row_ahead_on_shared_seeds_is_never_worse():
    g = top_group({"slow": seeds(110, 212, 314), "fast": seeds(100, 200, 300)}, higher_is_better=False)
    assert g.best == "fast" and g.members == ("fast",)
    # A leads by its mean only thanks to seed 2, which B lacks; on seeds 0 and 1 B is clearly ahead
    g = top_group({"A": seeds(0.60, 0.60, 0.99), "B": seeds(0.70, 0.71)})
    c = g.comparisons["B"]
    assert g.best == "A" and c.difference < 0 and c.p < 0.05 and not c.worse and g.members == ("A", "B")


def test_no_spread_in_the_differences():
    acc = (350 / 500, 400 / 500, 450 / 500)
    g = top_group({"A": seeds(*acc), "same": seeds(*acc), "one less": minus(acc, (1 / 500,) * 3)})
    assert g.comparisons["same"].p == 1.0 and g.comparisons["one less"].p == 0.0  # the t-test's limits
    assert g.members == ("A", "same")


def test_every_row_takes_part_a_one_seed_row_is_untestable_without_predictions():
    # the one-seed row has the highest mean: it is the best, not dropped
    rows = {"three": seeds(*A), "one": {0: 0.85}, "low": minus(A, (0.1, 0.1, 0.1))}
    g = top_group(rows)
    assert g.best == "one" and g.untestable == ["three", "low"]
    assert g.members == ("three", "one", "low") and g.winner is None
    assert "untestable" in g.footer and "three, low" in g.footer


def against(best: np.ndarray, lose: int, win: int) -> np.ndarray:
    """Another row's correctness: the best's, wrong on `lose` examples the best got right, and right on `win` it
    got wrong; so `lose + win` discordant pairs, `lose` of them for the best."""
    other = best.copy()
    other[np.flatnonzero(best)[:lose]] = False
    other[np.flatnonzero(~best)[:win]] = True
    return other


def test_one_seed_rows_are_compared_example_by_example():
    best = np.arange(100) < 90  # right on 90 of 100 test examples
    per_example = {"best": {0: best}, "worse": {0: against(best, 10, 0)}, "level": {0: against(best, 5, 4)},
                   "close": {0: against(best, 8, 1)}}
    g = top_group({"best": {0: 0.90}, "worse": {0: 0.80}, "level": {0: 0.89}, "close": {0: 0.83}},
                  per_example=per_example)
    c = g.comparisons["worse"]
    # 10 discordant examples, all for the best: two-sided binomial p = 2 / 2^10
    assert (c.test, c.n, c.difference) == (MCNEMAR, 10, pytest.approx(0.10))
    assert c.p == pytest.approx(2 / 1024) and c.p_adjusted == pytest.approx(3 * 2 / 1024) and c.worse
    assert g.comparisons["level"].p == pytest.approx(1.0)  # 5 against 4 is as even as 9 can be
    # 8 of 9 for the best: p = 2·(C(9,8) + C(9,9)) / 2^9 = 20/512 = 0.039 alone, 2·0.039 = 0.078 after Holm
    c = g.comparisons["close"]
    assert c.p == pytest.approx(20 / 512) and c.p_adjusted == pytest.approx(2 * 20 / 512) and not c.worse
    assert g.members == ("best", "level", "close") and "McNemar" in g.footer
    with pytest.raises(ValueError, match="correctness"):
        top_group({"best": {0: 0.88}}, higher_is_better=False, per_example=per_example)


def test_rows_without_values_take_no_part():
    g = top_group({"A": seeds(*A), "failed": {}, "B": seeds(*A)})
    assert g.members == ("A", "B") and g.comparisons["failed"].test == "no data"
    g = top_group({"A": seeds(*A), "failed": {}})
    assert g.best is None and g.members == () and g.winner is None


def test_untestable_is_reported_per_comparison():
    g = top_group({"A": seeds(*A), "B": {1: 0.5}})
    assert g.comparisons["B"].test == UNTESTABLE and g.comparisons["B"].p is None


# ---- budget to target


CURVE = [(15.0, 0.50), (30.0, 0.80), (45.0, 0.90)]


def test_reach_is_the_interval_between_checkpoints():
    assert reach_interval(CURVE, 0.75) == (15.0, 30.0)
    assert reach_interval(CURVE, 0.40) == (0.0, 15.0)  # reached before the first checkpoint
    assert reach_interval(CURVE, 0.95) is None
    # a short budget evaluates two checkpoints at one step: the earlier one says nothing apart
    assert reach_interval([(10.0, 0.5), (20.0, 0.6), (20.0, 0.8)], 0.7) == (10.0, 20.0)


def test_reach_summary_counts_seeds_that_never_reach():
    s = reach_summary([reach_interval(CURVE, 0.75), (30.0, 45.0), None])
    assert (s.runs, s.reached, s.lo, s.hi) == (3, 2, 15.0, 45.0)
    assert s.text("{:.1f}") == "(15.0, 45.0], 2/3 seeds"
    assert reach_summary([(15.0, 30.0)]).text() == "(15, 30]"
    assert reach_summary([None, None]).text() == "not reached (0/2 seeds)"
