"""The statistics core on constructed inputs with answers worked out by hand: intervals, Holm, budget to target
(the paired tests and the top group: tests/test_ranking.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runners.analysis.stats import LOG_CI, LOGIT_CI, holm, mean_ci, reach_interval, reach_summary

T2 = 4.302652729911275  # t(0.975, df=2), as printed in t tables (4.303)
T1 = 12.706204736174705  # t(0.975, df=1) (12.706)


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


def test_a_share_gets_the_logit_interval_which_stays_inside_0_and_1():
    # the AUC over 2 seeds printed [-0.0134, 1.1199] with the plain t-interval (t = 12.7)
    plain, share = mean_ci([0.5469, 0.5676]), mean_ci([0.5469, 0.5676], share=True)
    assert share.kind == LOGIT_CI and share.mean == plain.mean == share.center
    z = [math.log(v / (1 - v)) for v in (0.5469, 0.5676)]
    half = T1 * abs(z[0] - z[1]) / math.sqrt(2) / math.sqrt(2)  # sd of two values is |a - b| / √2
    mid = (z[0] + z[1]) / 2
    assert share.lo == pytest.approx(1 / (1 + math.exp(-(mid - half))))
    assert share.hi == pytest.approx(1 / (1 + math.exp(-(mid + half))))
    for values in ([0.02, 0.2], [0.95, 0.999], [0.0, 0.5, 1.0], [0.99, 1.0], [0.28, 0.28]):
        s = mean_ci(values, share=True)
        assert 0 <= s.lo <= s.hi <= 1, values
        assert mean_ci(values).lo < 0 or mean_ci(values).hi > 1 or values in ([0.28, 0.28],)
    assert mean_ci([0.28, 0.28], share=True).lo == pytest.approx(0.28)  # no spread: the point itself
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        mean_ci([0.5, 1.2], share=True)


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
