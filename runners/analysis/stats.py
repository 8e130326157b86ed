"""The statistics behind the tables: confidence intervals, Holm's correction and the budget-to-target interval.
Pure functions on numbers; the tables decide what to feed them (the paired tests and the top group:
runners.analysis.ranking)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # the confidence level of every interval here
T_CI = "95% CI of the mean (t-distribution)"
LOG_CI = "95% CI of the geometric mean (t-interval on the log scale)"
LOGIT_CI = "95% CI of the mean (t-interval on the logit scale, so within [0, 1])"
# A share of exactly 0 or 1 has no logit: it is taken as this far inside [0, 1] (one hundredth of a test row of
# 100), so that one seed at 100% widens the interval instead of breaking it.
LOGIT_EDGE = 1e-4


@dataclass(frozen=True)
class Summary:
    """`n` values: their arithmetic `mean` and sample `sd`, and a 95% confidence interval [`lo`, `hi`] around
    `center` (the mean, or the geometric mean for a positive quantity). sd needs two values, the interval too."""

    n: int
    mean: float | None
    sd: float | None
    lo: float | None
    hi: float | None
    center: float | None
    kind: str  # T_CI, LOG_CI or LOGIT_CI: what the interval is of, for the table's footer


def mean_ci(values: Sequence[float | None], positive: bool = False, share: bool = False) -> Summary:
    """Mean, sd and a 95% CI over seeds; None and NaN values are left out (n counts the rest).

    share=True (accuracies, F1, AUC, ECE: numbers in [0, 1]): the t-interval of the mean of logit(values), taken
    back with the logistic function, so that it stays inside [0, 1] (a plain t-interval over 2 seeds, t = 12.7,
    reaches far past both ends); values at 0 or 1 are taken LOGIT_EDGE inside. `center` stays the arithmetic mean.
    positive=True (times, memory, samples, throughput): the t-interval of the mean of log(values), taken back with
    exp: an interval for the geometric mean that is always > 0 and is wider above than below, as these skewed,
    multiplicative quantities are. Chosen over a percentile bootstrap because at the 2-3 seeds we run, a bootstrap
    has 3-10 distinct resamples, cannot reach past the observed range and covers far below 95%; the transformed
    t-intervals are closed-form and deterministic. Raises ValueError on a value <= 0 (positive) or outside [0, 1]
    (share). Otherwise the plain t-interval mean ± t(0.975, n-1)·sd/√n.
    """
    if positive and share:
        raise ValueError("a value is either positive (log scale) or a share (logit scale), not both")
    x = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    kind = LOG_CI if positive else LOGIT_CI if share else T_CI
    if n == 0:
        return Summary(0, None, None, None, None, None, kind)
    if positive and (x <= 0).any():
        raise ValueError(f"positive=True needs values > 0, got {x.min():g}")
    if share and ((x < 0) | (x > 1)).any():
        raise ValueError(f"share=True needs values in [0, 1], got {x.min():g}..{x.max():g}")
    mean = float(x.mean())
    center = float(np.exp(np.log(x).mean())) if positive else mean
    if n == 1:
        return Summary(1, mean, None, None, None, center, kind)
    sd = float(x.std(ddof=1))
    scale = np.log(x) if positive else _logit(x) if share else x
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * float(scale.std(ddof=1)) / math.sqrt(n)
    lo, hi = float(scale.mean()) - half, float(scale.mean()) + half
    if positive:
        lo, hi = math.exp(lo), math.exp(hi)
    elif share:
        lo, hi = _logistic(lo), _logistic(hi)
    return Summary(n, mean, sd, lo, hi, center, kind)


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, LOGIT_EDGE, 1 - LOGIT_EDGE)
    return np.log(x / (1 - x))


def _logistic(z: float) -> float:
    return float(1 / (1 + math.exp(-z))) if z > -700 else 0.0


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, in the input order.

    With the m p-values sorted p(1) <= ... <= p(m), the adjusted p(i) = max over j <= i of min(1, (m - j + 1)·p(j)).
    Rejecting every hypothesis whose adjusted p-value is below α controls the family-wise error rate at α.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError(f"p-values must be a flat list in [0, 1], got {pvalues!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def reach_interval(curve: Sequence[tuple[float, float]], target: float) -> tuple[float, float] | None:
    """When a run reached `target`, as the interval (lo, hi] it is known to lie in.

    `curve` is the run's checkpoints in order, each (budget spent, validation accuracy). hi is the budget at the
    first checkpoint with accuracy >= target; lo is the budget at the last earlier checkpoint that spent less
    (0 when there is none): the run was below target there, and checkpoints at the same budget (a short budget
    evaluating several at one step) say nothing apart. None when no checkpoint reached the target.
    """
    for i, (spent, accuracy) in enumerate(curve):
        if accuracy >= target:
            before = [b for b, _ in curve[:i] if b < spent]
            return (float(before[-1]) if before else 0.0), float(spent)
    return None


@dataclass(frozen=True)
class ReachSummary:
    """Budget to target over a row's seeds: how many `reached` out of `runs`, and the range (lo, hi] that holds
    every reaching seed's interval (None when none reached)."""

    runs: int
    reached: int
    lo: float | None
    hi: float | None

    def text(self, fmt: str = "{:,.0f}") -> str:
        """`(15.0, 30.0]`, with `, 2/3 seeds` when some seed never reached it, or `not reached (0/3 seeds)`."""
        if not self.reached:
            return f"not reached (0/{self.runs} seeds)"
        span = f"({fmt.format(self.lo)}, {fmt.format(self.hi)}]"
        return span if self.reached == self.runs else f"{span}, {self.reached}/{self.runs} seeds"


def reach_summary(intervals: Sequence[tuple[float, float] | None]) -> ReachSummary:
    """Summarise each seed's `reach_interval` (None: never reached, still counted in `runs`)."""
    hit = [i for i in intervals if i is not None]
    if not hit:
        return ReachSummary(len(intervals), 0, None, None)
    return ReachSummary(len(intervals), len(hit), min(lo for lo, _ in hit), max(hi for _, hi in hit))
