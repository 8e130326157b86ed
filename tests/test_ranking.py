"""The paired tests and the top group on constructed inputs with answers worked out by hand: the t-test across seeds,
the exact permutation test over test rows, both required, the majority-class reference, and what is undetermined."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from runners.analysis.ranking import (
    EVERY_SEED,
    NO_DATA,
    PAIRED_T,
    ROWS,
    SEEDS_ABOVE,
    UNDETERMINED,
    Reference,
    compare,
    seeds_power,
    sign_flip_p,
    top_group,
)


def p_t2(t: float) -> float:
    """Two-sided p-value of a t statistic with 2 degrees of freedom, in closed form: the t(2) CDF is
    1/2 + t / (2·sqrt(2 + t²)), so p = 1 - |t| / sqrt(2 + t²)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def seeds(*values: float) -> dict[int, float]:
    return dict(enumerate(values))


A = (0.70, 0.80, 0.90)  # a method that varies a lot across seeds


def minus(values, d) -> dict[int, float]:
    return seeds(*(v - x for v, x in zip(values, d)))


def against(best: np.ndarray, lose: int, win: int) -> np.ndarray:
    """Another row's correctness: the best's, wrong on `lose` examples the best got right, and right on `win` it
    got wrong; so `lose + win` discordant pairs, `lose` of them for the best."""
    other = best.copy()
    other[np.flatnonzero(best)[:lose]] = False
    other[np.flatnonzero(~best)[:win]] = True
    return other


# ---- the exact permutation test over test rows


def test_on_one_seed_the_permutation_test_is_the_exact_mcnemar_test():
    for b, c in [(10, 0), (8, 1), (5, 4), (30, 12), (0, 0)]:
        d = np.array([1] * b + [-1] * c + [0] * 50, dtype=float)
        expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
        assert sign_flip_p(d, 1) == pytest.approx(expected), (b, c)
        if b + c:
            assert sign_flip_p(d, 1, greater=True) == pytest.approx(
                stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)


def test_the_permutation_test_over_two_seeds_by_hand():
    # rows' differences averaged over 2 seeds: 1, 1/2, 1/2 (and ties): T·2 = ±2 ±1 ±1, 8 equally likely signs;
    # the observed 4 is the largest: two-sided P(|T·2| >= 4) = 2/8, one-sided 1/8
    d = np.array([1.0, 0.5, 0.5, 0.0, 0.0])
    assert sign_flip_p(d, 2) == pytest.approx(2 / 8) and sign_flip_p(d, 2, greater=True) == pytest.approx(1 / 8)
    # 1, -1/2, 1/2: T·2 = 2: |T·2| >= 2 for (2,±1,∓1), (2,1,1), (-2,-1,-1), (-2,∓1,±1): 6 of 8
    assert sign_flip_p(np.array([1.0, -0.5, 0.5]), 2) == pytest.approx(6 / 8)


def test_the_permutation_test_agrees_with_scipys_resampling():
    rng = np.random.default_rng(0)
    d = rng.choice([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1], size=40, p=[.1, .1, .1, .3, .15, .15, .1])
    exact = sign_flip_p(d, 3)
    sampled = stats.permutation_test((d,), np.sum, permutation_type="samples", n_resamples=20000,
                                     random_state=0).pvalue
    assert exact == pytest.approx(sampled, abs=0.01)


# ---- one row against another


def test_a_paired_test_separates_what_overlapping_intervals_cannot():
    from runners.analysis.stats import mean_ci

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
    assert PAIRED_T in g.footer and "Holm-corrected over 3 comparisons" in g.footer and "α = 0.05" in g.footer


def test_lower_is_better_and_a_row_ahead_on_shared_seeds_is_never_worse():
    g = top_group({"slow": seeds(110, 212, 314), "fast": seeds(100, 200, 300)}, higher_is_better=False)
    assert g.best == "fast" and g.members == ("fast",)
    # A leads by its mean only thanks to seed 2, which B lacks; on seeds 0 and 1 B is clearly ahead
    g = top_group({"A": seeds(0.60, 0.60, 0.99), "B": seeds(0.70, 0.71)})
    c = g.comparisons["B"]
    assert g.best == "A" and c.difference < 0 and c.p < 0.05 and not c.worse and g.members == ("A", "B")


def test_differences_that_do_not_vary_across_seeds_are_never_a_result():
    # the case: the same gap on every seed gave the t-test no spread, and it printed p = 0 ("worse")
    acc = (350 / 500, 400 / 500, 450 / 500)
    g = top_group({"A": seeds(*acc), "same": seeds(*acc), "one less": minus(acc, (1 / 500,) * 3)})
    for label in ("same", "one less"):
        c = g.comparisons[label]
        assert c.test == UNDETERMINED and c.p is None and not c.worse, label
        assert "do not vary" in c.left_out and "no stored predictions" in c.left_out
    assert g.members == ("A", "same", "one less") and g.winner is None and "undetermined" in g.footer


def test_without_spread_the_test_rows_decide():
    # two constant classifiers with 2 seeds each (the head and lora): one example apart on every seed
    truth = np.arange(100) < 41  # right exactly where the majority class is
    best = {s: truth.copy() for s in (0, 1)}
    other = {s: against(truth, 1, 0) for s in (0, 1)}
    g = top_group({"head": seeds(0.41, 0.41), "lora": seeds(0.40, 0.40)}, per_example={"head": best, "lora": other})
    c = g.comparisons["lora"]
    assert c.test == ROWS and c.rows == 100 and c.discordant == 1 and c.p == pytest.approx(1.0)
    assert "do not vary" in c.left_out and not c.worse and g.members == ("head", "lora")


def test_a_gap_holds_only_if_both_the_seeds_and_the_test_rows_show_it():
    truth = np.arange(1000) < 700
    # consistent across seeds (differences 0.002, 0.003, 0.002: t = 7, p = 0.02) but two or three test rows of 1000
    # each time: rows 1-2 lost on every seed, row 3 on one; the signs of 1, 1, 1/3 are as likely any way: p = 2/8
    rows = {"A": {s: truth for s in range(3)}, "B": {0: against(truth, 2, 0), 1: against(truth, 3, 0),
                                                       2: against(truth, 2, 0)}}
    g = top_group({"A": seeds(0.700, 0.700, 0.700), "B": seeds(0.698, 0.697, 0.698)}, per_example=rows)
    c = g.comparisons["B"]
    assert c.test == f"{PAIRED_T} and {ROWS}" and c.p_seeds < 0.05 < c.p_rows and c.p == c.p_rows
    assert c.p_rows == pytest.approx(2 / 8)
    assert not c.worse and g.members == ("A", "B")
    # far apart on the test rows (30 rows of 100) but one seed of three the other way round: seed luck
    rows = {"A": {s: truth for s in range(3)},
            "B": {0: against(truth, 30, 0), 1: against(truth, 30, 0), 2: against(truth, 0, 30)}}
    g = top_group({"A": seeds(0.7, 0.7, 0.7), "B": seeds(0.4, 0.4, 1.0)}, per_example=rows)
    c = g.comparisons["B"]
    assert c.p_rows < 0.05 < c.p_seeds and c.p == c.p_seeds and not c.worse


def test_one_seed_rows_are_compared_example_by_example():
    best = np.arange(100) < 90  # right on 90 of 100 test examples
    per_example = {"best": {0: best}, "worse": {0: against(best, 10, 0)}, "level": {0: against(best, 5, 4)},
                   "close": {0: against(best, 8, 1)}}
    g = top_group({"best": {0: 0.90}, "worse": {0: 0.80}, "level": {0: 0.89}, "close": {0: 0.83}},
                  per_example=per_example)
    c = g.comparisons["worse"]
    # 10 discordant examples, all for the best: two-sided binomial p = 2 / 2^10 (the exact McNemar test)
    assert (c.test, c.n, c.rows, c.discordant, c.difference) == (ROWS, 1, 100, 10, pytest.approx(0.10))
    assert c.p == pytest.approx(2 / 1024) and c.p_adjusted == pytest.approx(3 * 2 / 1024) and c.worse
    assert "one shared seed" in c.left_out
    assert g.comparisons["level"].p == pytest.approx(1.0)  # 5 against 4 is as even as 9 can be
    # 8 of 9 for the best: p = 2·(C(9,8) + C(9,9)) / 2^9 = 20/512 = 0.039 alone, 2·0.039 = 0.078 after Holm
    c = g.comparisons["close"]
    assert c.p == pytest.approx(20 / 512) and c.p_adjusted == pytest.approx(2 * 20 / 512) and not c.worse
    assert g.members == ("best", "level", "close") and ROWS in g.footer
    with pytest.raises(ValueError, match="correctness"):
        top_group({"best": {0: 0.88}}, higher_is_better=False, per_example=per_example)


def test_every_row_takes_part_a_one_seed_row_is_undetermined_without_predictions():
    # the one-seed row has the highest mean: it is the best, not dropped
    rows = {"three": seeds(*A), "one": {0: 0.85}, "low": minus(A, (0.1, 0.1, 0.1))}
    g = top_group(rows)
    assert g.best == "one" and g.undetermined == ["three", "low"]
    assert g.members == ("three", "one", "low") and g.winner is None
    assert "undetermined" in g.footer and "three, low" in g.footer


def test_rows_without_values_take_no_part():
    g = top_group({"A": seeds(*A), "failed": {}, "B": seeds(*A)})
    assert g.members == ("A", "B") and g.comparisons["failed"].test == NO_DATA
    g = top_group({"A": seeds(*A), "failed": {}})
    assert g.best is None and g.members == () and g.winner is None
    assert compare(seeds(0.5), {1: 0.6}).test == NO_DATA


def test_tests_that_disagree_on_the_side_claim_nothing():
    truth = np.arange(100) < 70
    c = compare(seeds(0.70, 0.71, 0.72), seeds(0.60, 0.61, 0.615),
                {s: truth for s in range(3)}, {s: against(truth, 0, 20) for s in range(3)})
    assert c.p_seeds < 0.05 and c.difference == 0.0  # ahead across seeds, behind on the stored rows


# ---- against always predicting the majority class


MAJORITY = np.arange(100) < 41  # the constant prediction is right on the 41 rows of its class


def reference() -> Reference:
    return Reference("always predicting 'neutral'", 0.41, MAJORITY)


def test_a_classifier_that_always_predicts_one_class_is_never_best():
    rows = {"const": {s: MAJORITY.copy() for s in (0, 1)}, "almost": {s: against(MAJORITY, 0, 1) for s in (0, 1)}}
    g = top_group({"const": seeds(0.41, 0.41), "almost": seeds(0.42, 0.42)}, per_example=rows,
                  reference=reference())
    assert g.best is None and g.members == () and set(g.below_reference) == {"const", "almost"}
    assert g.against_reference["almost"].test == EVERY_SEED and not g.against_reference["almost"].above
    assert g.footer.startswith("No top group: no row beats always predicting 'neutral'")


def test_a_method_must_beat_the_reference_on_every_seed():
    good = against(MAJORITY, 0, 25)  # 25 rows better than the constant prediction, none worse
    rows = {"steady": {s: good for s in range(3)},
            "collapsed once": {0: against(MAJORITY, 0, 40), 1: against(MAJORITY, 0, 40), 2: MAJORITY}}
    values = {"steady": seeds(0.66, 0.66, 0.66), "collapsed once": seeds(0.81, 0.81, 0.41)}
    g = top_group(values, per_example=rows, reference=reference())
    steady, collapsed = g.against_reference["steady"], g.against_reference["collapsed once"]
    assert steady.above and steady.p == pytest.approx(0.5 ** 25) and steady.p_adjusted == pytest.approx(2 * 0.5 ** 25)
    assert not collapsed.above and collapsed.p == 1.0  # its seed 2 is the constant prediction itself
    assert g.best == "steady" and g.members == ("steady",)  # the higher mean does not make the collapsed one best
    assert g.below_reference == ["collapsed once"]


def test_without_predictions_the_reference_takes_the_one_sided_t_test_or_is_undetermined():
    g = top_group({"A": seeds(0.50, 0.55, 0.60), "B": {0: 0.9}, "C": seeds(0.40, 0.41, 0.42)},
                  reference=Reference("always predicting the majority class", 0.41))
    a = g.against_reference["A"]
    # differences 0.09, 0.14, 0.19 against 0.41: t = 0.14 / (0.05/√3) = 2.8√3, one-sided
    assert a.test == SEEDS_ABOVE and a.p == pytest.approx(stats.t.sf(2.8 * math.sqrt(3), 2))
    assert g.against_reference["B"].test == UNDETERMINED and "one seed" in g.against_reference["B"].left_out
    assert not g.against_reference["C"].above
    assert g.best == "A" and g.below_reference == ["B", "C"]


def test_seeds_power_is_the_critical_t():
    assert seeds_power(2) == pytest.approx(12.706, abs=1e-3) and seeds_power(3) == pytest.approx(4.303, abs=1e-3)
    assert seeds_power(5) == pytest.approx(2.776, abs=1e-3) and seeds_power(1) is None
