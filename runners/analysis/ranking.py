"""Which rows of a table are better than which: paired tests of one row against another (across seeds, and across
test rows from the stored predictions), a row against always predicting the majority class, and the top group.

A difference counts only when every test that applies finds it. The paired t-test across seeds asks whether the
gap is more than the luck of the seed (initialisation, dropout, batch order); the paired permutation test over test
rows asks whether it is more than the luck of which texts landed in the test set. With 2 or 3 seeds either can be
fooled alone: two seeds whose gaps agree to the last example give the t-test no spread and a p-value of 0, and a
gap of one test example can repeat on every seed. Requiring both (an intersection-union test: its p-value is the
larger of the two) keeps every claimed difference a real one. A test that cannot be computed (one seed, or no
spread across seeds) is left out and said so; where none applies the comparison is *undetermined*.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from runners.analysis.stats import holm

PAIRED_T = "paired t-test across seeds"
ROWS = "paired permutation test over test rows"
EVERY_SEED = "one-sided exact McNemar test on each seed's test rows"
SEEDS_ABOVE = "one-sided t-test across seeds"
UNDETERMINED = "undetermined"
NO_DATA = "no data"
BELOW_REFERENCE = "not above the reference"  # not compared with the best: it does not beat the reference


@dataclass(frozen=True)
class Comparison:
    """One row against another (the best, or the reference). `difference` is signed so that > 0 means the other
    side (the best; or this row against the reference) is ahead: the mean paired difference over shared seeds, or
    over the test rows where that is the only test. `p` is the largest p-value of the tests that applied."""

    test: str  # PAIRED_T, ROWS, both joined by " and ", UNDETERMINED, NO_DATA or BELOW_REFERENCE
    n: int  # shared seeds
    difference: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    significant: bool = False  # the side ahead is ahead significantly, at level alpha after Holm
    rows: int = 0  # test rows compared by the permutation test (0: it did not apply)
    discordant: int = 0  # of those, rows where the two differ in correctness on average over the shared seeds
    p_seeds: float | None = None
    p_rows: float | None = None
    left_out: str = ""  # why a test did not apply (one seed, no spread across seeds, no stored predictions)

    @property
    def decided(self) -> bool:
        return self.p is not None

    @property
    def worse(self) -> bool:
        """Against the best: this row is significantly worse."""
        return self.significant

    @property
    def above(self) -> bool:
        """Against the reference: this row is significantly above it."""
        return self.significant


def _spread(d: np.ndarray) -> bool:
    return bool(np.ptp(d) > 1e-12 * max(1.0, float(np.abs(d).max())))


def sign_flip_p(d: np.ndarray, scale: int, greater: bool = False) -> float:
    """Two-sided exact p-value of the paired permutation (sign-flip) test of the mean of `d`, each value a multiple
    of 1/`scale`: under the null hypothesis each row's difference is as likely positive as negative.

    The statistic is the sum T = Σ dᵢ; with kⱼ rows of |dᵢ·scale| = j, flipping their signs at random gives T·scale
    = Σⱼ j·(2·Bⱼ − kⱼ), Bⱼ ~ Binomial(kⱼ, ½), whose distribution is the convolution of those binomials: exact, no
    resampling. p = P(|T| ≥ |T observed|), or with `greater` the one-sided P(T ≥ T observed). With one seed
    (scale 1) this is the exact McNemar test."""
    k = np.rint(np.asarray(d, dtype=float) * scale).astype(np.int64)
    sizes, total = np.abs(k[k != 0]), int(k.sum())
    if not len(sizes) or (total == 0 and not greater):
        return 1.0
    return _upper(sizes, total) if greater else _two_sided(sizes, abs(total))


def _distribution(sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """P(T·scale = i − offset) for T·scale = Σ ±sizes with independent fair signs, and the offset."""
    dist, offset = np.ones(1), 0  # dist[i] = P(T·scale = i − offset)
    for j, count in zip(*np.unique(sizes, return_counts=True)):
        grid = np.zeros(2 * j * count + 1)
        grid[:: 2 * j] = stats.binom.pmf(np.arange(count + 1), count, 0.5)
        dist, offset = np.convolve(dist, grid), offset + int(j * count)
    return dist, offset


def _two_sided(sizes: np.ndarray, observed: int) -> float:
    dist, offset = _distribution(sizes)
    return float(min(1.0, dist[np.abs(np.arange(len(dist)) - offset) >= observed].sum()))


def _upper(sizes: np.ndarray, observed: int) -> float:
    dist, offset = _distribution(sizes)
    return float(min(1.0, dist[np.arange(len(dist)) - offset >= observed].sum()))


def compare(a: Mapping[int, float], b: Mapping[int, float], a_rows: Mapping[int, np.ndarray] | None = None,
            b_rows: Mapping[int, np.ndarray] | None = None, sign: float = 1.0) -> Comparison:
    """`a` against `b` on what they share: per-seed values (`a`, `b`: seed → metric) and, for accuracy, per-row
    correctness (seed → bool array over the test rows). The difference is sign·(a − b)."""
    shared = sorted(set(a) & set(b))
    applied: list[tuple[str, float, float]] = []
    left_out, rows, discordant = [], 0, 0
    if len(shared) >= 2:
        d = sign * (np.array([a[s] for s in shared]) - np.array([b[s] for s in shared]))
        if _spread(d):
            applied.append((PAIRED_T, float(d.mean()), float(stats.ttest_1samp(d, 0.0).pvalue)))
        else:  # t = mean / 0: a p of 0 (or 1) that says nothing about the noise
            left_out.append(f"the {len(shared)} seeds' differences do not vary, so the t-test is undefined")
    elif shared:
        left_out.append("one shared seed: no t-test across seeds")
    with_rows = sorted(set(a_rows or {}) & set(b_rows or {}))
    if with_rows:
        x = np.mean([np.asarray(a_rows[s], dtype=float) for s in with_rows], axis=0)
        y = np.mean([np.asarray(b_rows[s], dtype=float) for s in with_rows], axis=0)
        if x.shape != y.shape:
            raise ValueError("the two rows have per-example results of different lengths")
        d = sign * (x - y)
        rows, discordant = len(d), int((d != 0).sum())
        applied.append((ROWS, float(d.mean()), sign_flip_p(d, len(with_rows))))
    elif shared:
        left_out.append("no stored predictions: no test over test rows")
    why = "; ".join(left_out)
    if not shared:
        return Comparison(NO_DATA, 0, left_out="no shared seed")
    if not applied:
        return Comparison(UNDETERMINED, len(shared), left_out=why)
    p = max(p for _, _, p in applied)
    found = dict((t, p) for t, _, p in applied)
    difference = applied[0][1] if all(diff > 0 for _, diff, _ in applied) or all(
        diff <= 0 for _, diff, _ in applied) else 0.0  # the tests disagree on the side: no difference is claimed
    return Comparison(" and ".join(t for t, _, _ in applied), len(shared), difference, p, rows=rows,
                      discordant=discordant, p_seeds=found.get(PAIRED_T), p_rows=found.get(ROWS), left_out=why)


def above_reference(seeds: Mapping[int, float], reference: Reference,
                    rows: Mapping[int, np.ndarray] | None = None) -> Comparison:
    """Whether a row beats the reference on every seed (one-sided; Holm over the rows is applied by the caller).

    With stored predictions: each seed's trained classifier against the reference on the test rows, by the exact
    McNemar test (the permutation test of `compare` on one seed), one-sided; the row is above only if every seed
    is, so p is the largest over its seeds. A method with one seed that collapsed to a constant prediction is thus
    never above it, whatever its other seeds did. Without predictions: the one-sided t-test of the seeds'
    accuracies against the reference's, where there are two seeds or more that vary; else undetermined. The
    difference is the mean accuracy over the seeds less the reference's."""
    ordered = sorted(seeds)
    difference = float(np.mean([seeds[s] for s in ordered])) - reference.accuracy
    with_rows = [s for s in ordered if rows and s in rows] if reference.correct is not None else []
    if with_rows:
        ps = [sign_flip_p(np.asarray(rows[s], dtype=float) - reference.correct, 1, greater=True) for s in with_rows]
        left = "" if len(with_rows) == len(ordered) else f"{len(ordered) - len(with_rows)} seed(s) without predictions"
        return Comparison(EVERY_SEED, len(ordered), difference, max(ps), rows=len(reference.correct),
                          p_rows=max(ps), left_out=left)
    d = np.array([seeds[s] for s in ordered]) - reference.accuracy
    if len(d) >= 2 and _spread(d):
        p = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
        return Comparison(SEEDS_ABOVE, len(d), difference, p, p_seeds=p,
                          left_out="no stored predictions: no test over test rows")
    why = ("one seed and no stored predictions" if len(d) < 2 else
           f"the {len(d)} seeds' accuracies do not vary and no predictions are stored")
    return Comparison(UNDETERMINED, len(d), difference, left_out=why)


def _adjusted(comparisons: dict[str, Comparison], alpha: float) -> dict[str, Comparison]:
    """Holm's correction over the decided comparisons; `worse` where the adjusted p < alpha and the side is ahead."""
    decided = [label for label, c in comparisons.items() if c.decided]
    out = dict(comparisons)
    for label, adjusted in zip(decided, holm([comparisons[x].p for x in decided])):
        c = comparisons[label]
        out[label] = replace(c, p_adjusted=float(adjusted), significant=bool(adjusted < alpha and
                                                                             (c.difference or 0) > 0))
    return out


@dataclass(frozen=True)
class Reference:
    """What every row must beat before it can be called best: always predicting one class (the majority class of
    the training rows), with its accuracy and per-row correctness on the test rows."""

    name: str  # how it is said: "always predicting 'neutral'"
    accuracy: float
    correct: np.ndarray | None = None  # per test row (None when no run stored its labels)


@dataclass(frozen=True)
class TopGroup:
    """The best row by mean among the rows that beat the reference, and `members`: it and every such row not
    significantly worse than it (input order). `comparisons` holds every other row's test against the best;
    `against_reference` every row's test against the reference (difference: row − reference); `footer` names the
    tests, the correction and the level."""

    best: str | None
    members: tuple[str, ...]
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    alpha: float = 0.05
    footer: str = ""
    reference: Reference | None = None
    against_reference: dict[str, Comparison] = field(default_factory=dict)

    @property
    def undetermined(self) -> list[str]:
        return [label for label, c in self.comparisons.items() if c.test == UNDETERMINED]

    @property
    def below_reference(self) -> list[str]:
        """Rows with values that are not shown to beat the reference: never best, never in the top group."""
        return [label for label, c in self.against_reference.items() if c.test != NO_DATA and not c.above]

    @property
    def winner(self) -> str | None:
        """The best row when it alone is in the top group: every other row tested and found worse."""
        return self.best if len(self.members) == 1 else None


def top_group(per_seed: Mapping[str, Mapping[int, float]], higher_is_better: bool = True, alpha: float = 0.05,
              per_example: Mapping[str, Mapping[int, np.ndarray]] | None = None,
              reference: Reference | None = None) -> TopGroup:
    """The top group of rows for one metric; seeds pair runs across rows (same initialisation, batches, test rows).

    1. With a `reference` (accuracy only), every row is first compared with it by the tests of `compare` (Holm over
       the rows): only a row significantly above it can be best or in the top group.
    2. The best row is the one with the highest mean over its own seeds among those (lowest if not
       higher_is_better; the first listed on a tie).
    3. Each other such row is compared with the best by the tests of `compare`: the paired t-test across shared
       seeds and, where `per_example` holds both rows' 0/1 correctness on shared seeds, the permutation test over
       test rows; the p-value is the larger. Two-sided, because the best was chosen by the same data.
    4. Holm's correction over the decided comparisons; a row is worse when its adjusted p < alpha and the best is
       ahead of it. The top group is the best and every row not worse, undetermined rows included: a row that
       could not be tested was not shown worse, so while any row is undetermined no single winner can be named.
    None and NaN values are left out; rows without any value (every seed failed) take no part.
    """
    if per_example is not None and not higher_is_better:
        raise ValueError("per_example holds correctness (higher is better); it cannot rank a ↓ metric")
    examples = per_example or {}
    values = {label: {s: float(v) for s, v in seeds.items() if v is not None and not math.isnan(v)}
              for label, seeds in per_seed.items()}
    with_data = {label: seeds for label, seeds in values.items() if seeds}
    against: dict[str, Comparison] = {}
    if reference is not None:
        against = _adjusted({label: above_reference(seeds, reference, examples.get(label))
                             for label, seeds in with_data.items()}, alpha)
        against.update({label: Comparison(NO_DATA, 0) for label in per_seed if label not in with_data})
    eligible = {label: seeds for label, seeds in with_data.items() if reference is None or against[label].above}
    comparisons = {label: Comparison(NO_DATA, 0) for label in per_seed if label not in with_data}
    comparisons.update({label: Comparison(BELOW_REFERENCE, 0) for label in with_data if label not in eligible})
    if len(eligible) < 1 or (reference is None and len(eligible) < 2):
        why = (f"no row beats {reference.name}" if reference is not None and not eligible
               else "fewer than two rows with values")
        return TopGroup(None, (), comparisons, alpha, f"No top group: {why}.", reference, against)
    sign = 1.0 if higher_is_better else -1.0
    best = max(eligible, key=lambda label: sign * float(np.mean(list(eligible[label].values()))))
    for label, seeds in eligible.items():
        if label != best:
            comparisons[label] = compare(eligible[best], seeds, examples.get(best), examples.get(label), sign)
    comparisons = _adjusted(comparisons, alpha)
    members = tuple(label for label in eligible if label == best or not comparisons[label].worse)
    ordered = {label: comparisons[label] for label in per_seed if label != best}
    return TopGroup(best, members, ordered, alpha, footer(ordered, alpha, reference, against), reference, against)


def footer(comparisons: Mapping[str, Comparison], alpha: float, reference: Reference | None = None,
           against: Mapping[str, Comparison] | None = None) -> str:
    """One line under a table: which rows are bold, by which tests, correction and level."""
    used = {t for c in comparisons.values() if c.decided for t in c.test.split(" and ")}
    k = sum(c.decided for c in comparisons.values())
    text = "Top group (bold): the best row by mean and every row not significantly worse than it"
    if used:
        how = " and ".join(t for t in (PAIRED_T, ROWS) if t in used)
        text += (f", by a {how} (two-sided; a gap counts only if every test that applies finds it, so p is the "
                 f"larger), Holm-corrected over {k} comparison{'s' * (k != 1)}")
    text += f", α = {alpha:g}"
    if reference is not None and against:
        tests = {c.test for c in against.values() if c.decided}
        how = " or ".join(t for t in (EVERY_SEED, SEEDS_ABOVE) if t in tests) or "no test (undetermined)"
        text += (f"; a row is a candidate only if it beats {reference.name} (test accuracy "
                 f"{reference.accuracy:.4f}) on every seed, by a {how}" +
                 (" (without stored predictions)" if SEEDS_ABOVE in tests else "") +
                 f", Holm-corrected over {len(against)} rows")
    undetermined = [label for label, c in comparisons.items() if c.test == UNDETERMINED]
    if undetermined:
        text += "; undetermined (no test applies), so kept in the group: " + ", ".join(undetermined)
    return text + "."


def seeds_power(n: int, alpha: float = 0.05) -> float | None:
    """How many standard errors a mean paired difference over `n` seeds must reach for the two-sided t-test to call
    it at level alpha: t(1 − alpha/2, n − 1) (12.7 for 2 seeds, 4.3 for 3, 2.8 for 5); None under 2 seeds."""
    return float(stats.t.ppf(1 - alpha / 2, n - 1)) if n >= 2 else None
