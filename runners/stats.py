"""The statistics behind the tables: confidence intervals, paired tests, Holm's correction, the top group and the
budget-to-target interval. Pure functions on numbers; the tables decide what to feed them."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

LEVEL = 0.95  # the confidence level of every interval here
T_CI = "95% CI of the mean (t-distribution)"
LOG_CI = "95% CI of the geometric mean (t-interval on the log scale)"


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
    kind: str  # T_CI or LOG_CI: what the interval is of, for the table's footer


def mean_ci(values: Sequence[float | None], positive: bool = False) -> Summary:
    """Mean, sd and a 95% CI over seeds; None and NaN values are left out (n counts the rest).

    positive=False (accuracies, F1): the t-interval mean ± t(0.975, n-1)·sd/√n.
    positive=True (times, memory, samples, throughput): the t-interval of the mean of log(values), taken back with
    exp: an interval for the geometric mean that is always > 0 and is wider above than below, as these skewed,
    multiplicative quantities are. Chosen over a percentile bootstrap because at the 2-3 seeds we run, a bootstrap
    has 3-10 distinct resamples, cannot reach past the observed range and covers far below 95%; the log-scale
    interval is exact for log-normal data, closed-form and deterministic. Raises ValueError on a value <= 0.
    """
    x = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    kind = LOG_CI if positive else T_CI
    if n == 0:
        return Summary(0, None, None, None, None, None, kind)
    if positive and (x <= 0).any():
        raise ValueError(f"positive=True needs values > 0, got {x.min():g}")
    mean = float(x.mean())
    center = float(np.exp(np.log(x).mean())) if positive else mean
    if n == 1:
        return Summary(1, mean, None, None, None, center, kind)
    sd = float(x.std(ddof=1))
    scale = np.log(x) if positive else x
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * float(scale.std(ddof=1)) / math.sqrt(n)
    lo, hi = float(scale.mean()) - half, float(scale.mean()) + half
    if positive:
        lo, hi = math.exp(lo), math.exp(hi)
    return Summary(n, mean, sd, lo, hi, center, kind)


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


@dataclass(frozen=True)
class Comparison:
    """One row against the best. `difference` is best minus row, signed so that > 0 means the best is ahead (the
    mean paired difference over shared seeds, or the accuracy difference over the examples McNemar used); `n` is
    the number of shared seeds (t-test) or of discordant examples (McNemar)."""

    test: str  # PAIRED_T, MCNEMAR, UNTESTABLE or NO_DATA
    n: int
    difference: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    worse: bool = False  # significantly worse than the best at level alpha, after Holm


PAIRED_T = "paired t-test"
MCNEMAR = "McNemar exact"
UNTESTABLE = "untestable"
NO_DATA = "no data"


@dataclass(frozen=True)
class TopGroup:
    """The best row by mean, and `members`: it and every row not significantly worse than it (input order).
    `comparisons` holds every other row's test; `footer` names the test, the correction and the level."""

    best: str | None
    members: tuple[str, ...]
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    alpha: float = 0.05
    footer: str = ""

    @property
    def untestable(self) -> list[str]:
        return [label for label, c in self.comparisons.items() if c.test == UNTESTABLE]

    @property
    def winner(self) -> str | None:
        """The best row when it alone is in the top group: every other row tested and found worse."""
        return self.best if len(self.members) == 1 else None


def _paired_t(best: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Two-sided paired t-test of best vs other; (mean difference, p). With no spread in the differences the
    t statistic is 0/0 (all equal: p = 1) or ±∞ (one constant, nonzero difference: p = 0, the test's limit)."""
    d = best - other
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        return float(d.mean()), 1.0 if abs(float(d.mean())) <= 1e-12 else 0.0
    return float(d.mean()), float(stats.ttest_rel(best, other).pvalue)


def _mcnemar(best: np.ndarray, other: np.ndarray) -> tuple[float, int, float]:
    """Exact McNemar test on paired correctness: of the b + c examples exactly one of the two got right, is the
    best's share b different from 1/2 (two-sided binomial)? Returns (accuracy difference, b + c, p)."""
    b = int((best & ~other).sum())
    c = int((~best & other).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return (b - c) / len(best), b + c, p


def top_group(per_seed: Mapping[str, Mapping[int, float]], higher_is_better: bool = True, alpha: float = 0.05,
              per_example: Mapping[str, Mapping[int, np.ndarray]] | None = None) -> TopGroup:
    """The top group of rows for one metric; seeds are paired across rows (same initialisation, batches, test rows).

    1. The best row is the one with the highest mean over its own seeds (lowest if not higher_is_better; the
       first listed on a tie).
    2. Each other row is compared with the best on the seeds both have:
       - two or more shared seeds: a two-sided paired t-test (`scipy.stats.ttest_rel`) of the per-seed values.
         Two-sided rather than one-sided because the best was chosen by the same data, which already biases the
         differences in its favour; a row that is ahead on the shared seeds is never counted worse;
       - otherwise, where `per_example` holds both rows' 0/1 test-example correctness on shared seeds: the exact
         McNemar test on those examples (pooled over the shared seeds; here at most one). It measures test-set
         noise for the trained models, not seed-to-seed variation; it only applies to accuracy (↑);
       - otherwise the comparison is UNTESTABLE (a one-seed row without stored predictions).
    3. Holm's correction over the tested comparisons; a row is worse when its adjusted p < alpha and the best is
       ahead of it. The top group is the best and every row not worse, untestable rows included: a row that could
       not be tested was not shown worse, so while any row is untestable no single winner can be named.
    None and NaN values are left out. Rows without any value (every seed failed) take no part and are not members.
    With fewer than two rows with values there is no comparison and no top group.
    """
    if per_example is not None and not higher_is_better:
        raise ValueError("per_example holds correctness (higher is better); it cannot rank a ↓ metric")
    values = {label: {s: float(v) for s, v in seeds.items() if v is not None and not math.isnan(v)}
              for label, seeds in per_seed.items()}
    with_data = {label: seeds for label, seeds in values.items() if seeds}
    comparisons = {label: Comparison(NO_DATA, 0) for label in per_seed if label not in with_data}
    if len(with_data) < 2:
        return TopGroup(None, (), comparisons, alpha, "No top group: fewer than two rows with values.")
    sign = 1.0 if higher_is_better else -1.0
    best = max(with_data, key=lambda label: sign * float(np.mean(list(with_data[label].values()))))
    for label, seeds in with_data.items():
        if label == best:
            continue
        shared = sorted(set(seeds) & set(with_data[best]))
        examples = per_example or {}
        shared_ex = sorted(set(examples.get(label, {})) & set(examples.get(best, {})))
        if len(shared) >= 2:
            diff, p = _paired_t(sign * np.array([with_data[best][s] for s in shared]),
                                sign * np.array([seeds[s] for s in shared]))
            comparisons[label] = Comparison(PAIRED_T, len(shared), diff, p)
        elif shared_ex:
            b, o = (np.concatenate([np.asarray(examples[x][s], dtype=bool) for s in shared_ex]) for x in (best, label))
            if b.shape != o.shape:
                raise ValueError(f"{best!r} and {label!r} have per-example results of different lengths")
            diff, n, p = _mcnemar(b, o)
            comparisons[label] = Comparison(MCNEMAR, n, diff, p)
        else:
            comparisons[label] = Comparison(UNTESTABLE, len(shared))
    tested = [label for label, c in comparisons.items() if c.p is not None]
    for label, adjusted in zip(tested, holm([comparisons[x].p for x in tested])):
        c = comparisons[label]
        comparisons[label] = Comparison(c.test, c.n, c.difference, c.p, float(adjusted),
                                        bool(adjusted < alpha and c.difference > 0))
    members = tuple(label for label in with_data if label == best or not comparisons[label].worse)
    ordered = {label: comparisons[label] for label in per_seed if label != best}
    return TopGroup(best, members, ordered, alpha, _footer(ordered, alpha))


def _footer(comparisons: Mapping[str, Comparison], alpha: float) -> str:
    """One line under a table: which rows are bold, by which test, correction and level."""
    used = {c.test for c in comparisons.values()}
    tests = [t for t in (PAIRED_T, MCNEMAR) if t in used]
    how = {PAIRED_T: "a paired t-test across shared seeds (two-sided)",
           MCNEMAR: "an exact McNemar test on the test examples where rows share one seed"}
    k = sum(c.p is not None for c in comparisons.values())
    text = "Top group (bold): the best row by mean and every row not significantly worse than it"
    if tests:
        text += f", by {' or '.join(how[t] for t in tests)}, Holm-corrected over {k} comparison{'s' * (k != 1)}"
    text += f", α = {alpha:g}"
    untestable = [label for label, c in comparisons.items() if c.test == UNTESTABLE]
    if untestable:
        text += "; untestable (under two shared seeds, no stored predictions), so kept in the group: " + \
            ", ".join(untestable)
    return text + "."


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
