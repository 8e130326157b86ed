"""The verdict of one experiment, from its records: every method against always predicting the majority class, the
top group by test accuracy among those that beat it (runners.analysis.ranking: paired tests, Holm-corrected), and a few
plain sentences on which methods to use, what the cheapest costs in accuracy, and how far the tests can see."""
from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from runners.analysis.ranking import (
    EVERY_SEED,
    PAIRED_T,
    ROWS,
    SEEDS_ABOVE,
    UNDETERMINED,
    Reference,
    TopGroup,
    seeds_power,
    top_group,
)
from runners.measure.scores import expand_predictions
from runners.store.records import row_label
from runners.store.schema import Record

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment


def accuracy_group(records: list[Record], alpha: float = 0.05, kinds: tuple[str, ...] = ("method",),
                   labels: set[str] | None = None, reference: bool = True) -> TopGroup:
    """The top group by test accuracy over the fine-tuning rows (baselines are references, not candidates), or over
    the rows of `kinds` named in `labels`; with `reference`, only rows that beat always predicting the majority
    class are candidates. Seeds pair runs across rows; stored predictions pair test rows."""
    per_seed: dict[str, dict[int, float]] = {}
    per_example: dict[str, dict[int, np.ndarray]] = {}
    for r in records:
        if not r.ok or r.method.kind not in kinds or (labels is not None and row_label(r) not in labels):
            continue
        label = row_label(r)
        per_seed.setdefault(label, {})[r.seed] = r.metrics.accuracy
        if r.predictions is not None:
            truth = expand_predictions(r.predictions.labels)
            per_example.setdefault(label, {})[r.seed] = expand_predictions(r.predictions.predicted) == truth
    return top_group(per_seed, higher_is_better=True, alpha=alpha, per_example=per_example or None,
                     reference=majority_reference(records) if reference else None)


def majority_reference(records: list[Record]) -> Reference | None:
    """Always predicting the training rows' most common class: its name (from the data's class counts), its test
    accuracy (as every run recorded it) and, where a run stored the test labels, its correctness per test row."""
    tested = [r for r in records if r.ok and r.metrics is not None]
    if not tested:
        return None
    data = tested[0].data
    counts, names = (data.get("class_counts") or {}).get("train"), data.get("label_names") or []
    index = int(np.argmax(counts)) if counts else None
    if index is None:  # records older than the class counts: the class's name was not kept
        name = "always predicting the majority class"
    else:
        name = f"always predicting '{names[index] if index < len(names) else index}'"
    stored = next((r for r in tested if r.predictions is not None), None)
    correct = None
    if stored is not None and index is not None:
        correct = expand_predictions(stored.predictions.labels) == index
    return Reference(name, tested[0].metrics.majority_baseline, correct)


def sentences(exp: Experiment) -> list[str]:
    """A few sentences a user can act on, generated from the numbers (never written by hand)."""
    records, group = exp.records, exp.group
    mean = {label: {"acc": statistics.fmean(x.metrics.accuracy for x in row.ok),
                    "mem": statistics.fmean(x.measurements.peak_memory_mib for x in row.ok),
                    "time": statistics.fmean(x.measurements.train_seconds for x in row.ok),
                    "kind": row.kind, "seeds": len(row.ok)} for label, row in exp.rows.items() if row.ok}
    methods = [label for label in mean if mean[label]["kind"] == "method"]
    if not methods:
        return ["No fine-tuning run ended ok: there is nothing to recommend."]
    ref = group.reference
    below = [m for m in methods if m in group.below_reference]
    cfg = exp.config
    out = []
    if ref is not None and group.best is None:  # nothing is called best: said first, before anything else
        undecided = [m for m in methods if group.against_reference[m].test == UNDETERMINED]
        if len(undecided) == len(methods):
            why = group.against_reference[undecided[0]].left_out
            out.append(f"Undetermined: no test can tell whether any method beats {ref.name} (test accuracy "
                       f"{ref.accuracy:.3f}) here ({why}), so none is ranked or recommended.")
        else:
            out.append(f"No method beats {ref.name} (test accuracy {ref.accuracy:.3f}) by the tests below: at this "
                       f"budget none has learned more than how often each class occurs, so none is recommended.")
            out += _undetermined(group, reference=True)
        if cfg.tune_lr is not None:
            out.append("Each method trained at its own tuned learning rate (the tuned lr column).")
        return out + _baseline(records, methods, mean) + _power(group, mean, methods) + _untuned(cfg, methods)
    if cfg.tune_lr is not None:  # say on what footing the methods met
        out.append("Each method trained at its own tuned learning rate (the tuned lr column).")
    best = group.best or methods[0]  # a single method is its own top group, with nothing to test it against
    members = [m for m in group.members if m in mean] or [best]
    candidates = [m for m in methods if m not in below]
    if len(methods) == 1:
        out.append(f"{best} is the only method that ended ok here (test accuracy {mean[best]['acc']:.3f}): there is "
                   f"nothing to rank it against.")
    elif len(candidates) == 1:
        out.append(f"{best} is the only method that beats {ref.name} (test accuracy {mean[best]['acc']:.3f} "
                   f"against {ref.accuracy:.3f}).")
    elif len(members) == len(candidates):
        both = "Both methods" if len(candidates) == 2 else f"All {len(candidates)} methods"
        that = " that beat " + ref.name if below else ""
        out.append(f"{both}{that} are tied at this budget: none is significantly worse than the best "
                   f"({best}, test accuracy {mean[best]['acc']:.3f}) by the tests below.")
    elif len(members) == 1:
        out.append(f"{best} is the best method at this budget (test accuracy {mean[best]['acc']:.3f}); "
                   f"every other method is significantly worse by the tests below.")
    else:
        out.append(f"The top group at this budget is {_join(members)} (test accuracy "
                   f"{_span(mean, members, 'acc', '{:.3f}')}): none of them is significantly worse than the best, "
                   f"{best}, by the tests below.")
    out += _cheapest(mean, members, candidates, best, ref.name if below else None)
    shown_below = [m for m in below if group.against_reference[m].test != UNDETERMINED]
    if shown_below:
        out.append(f"{_join(shown_below)} {'is' if len(shown_below) == 1 else 'are'} no better than {ref.name} "
                   f"(test accuracy {ref.accuracy:.3f}) by the same tests, so never ranked.")
    out += _undetermined(group)
    return out + _baseline(records, candidates or methods, mean) + _power(group, mean, members) + _untuned(cfg, methods)


def _baseline(records: list[Record], methods: list[str], mean: dict) -> list[str]:
    baselines = [label for label in mean if mean[label]["kind"] == "baseline"]
    if not baselines:
        return []
    return [against_baseline(records, methods, max(baselines, key=lambda b: mean[b]["acc"]), mean)]


def _cheapest(mean: dict, members: list[str], candidates: list[str], best: str, beats: str | None) -> list[str]:
    """Which top-group member costs least, and what the cheapest candidate outside it gives up."""
    out = []
    cheap_mem = min(members, key=lambda m: mean[m]["mem"])
    cheap_time = min(members, key=lambda m: mean[m]["time"])
    if len(members) > 1:
        if cheap_mem == cheap_time:
            out.append(f"Of these, {cheap_mem} is the cheapest in both memory ({mean[cheap_mem]['mem']:,.0f} MiB) "
                       f"and training time ({mean[cheap_mem]['time']:.1f} s).")
        else:
            out.append(f"Of these, {cheap_mem} needs the least memory ({mean[cheap_mem]['mem']:,.0f} MiB) and "
                       f"{cheap_time} the least training time ({mean[cheap_time]['time']:.1f} s).")
    cheapest = min(candidates, key=lambda m: (mean[m]["mem"], mean[m]["time"])) if candidates else best
    if cheapest not in members:
        lost = mean[best]["acc"] - mean[cheapest]["acc"]
        which = f"that beats {beats}" if beats else "overall"
        out.append(f"The cheapest method {which}, {cheapest} ({mean[cheapest]['mem']:,.0f} MiB, "
                   f"{mean[cheapest]['time']:.1f} s), gives up {lost:.3f} of test accuracy against {best}.")
    return out


def _undetermined(group: TopGroup, reference: bool = False) -> list[str]:
    """Where no test applied, which rows and why, in one sentence each kind."""
    out = []
    undecided = [(label, c) for label, c in group.against_reference.items() if c.test == UNDETERMINED]
    if undecided and group.reference is not None:
        names = [label for label, _ in undecided]
        out.append(f"Whether {_join(names)} beat{'s' * (len(names) == 1)} {group.reference.name} is undetermined: "
                   f"{undecided[0][1].left_out}.")
    if not reference and group.undetermined:
        why, one = group.comparisons[group.undetermined[0]].left_out, len(group.undetermined) == 1
        out.append(f"Whether {_join(group.undetermined)} {'is' if one else 'are'} worse than {group.best} is "
                   f"undetermined ({why}), so {'it stays' if one else 'they stay'} in the top group.")
    return out


def _power(group: TopGroup, mean: dict, rows: list[str]) -> list[str]:
    """How far the seeds let the tests see, said where the tests found no difference and the seeds are few."""
    tied = len(rows) > 1 or (group.best is None and group.reference is not None)
    seeds = min((mean[m]["seeds"] for m in rows if m in mean), default=0)
    if not tied or seeds >= 5:
        return []
    tests = [c.test for c in [*group.comparisons.values(), *group.against_reference.values()]]
    if seeds == 1:
        if not any(ROWS in t or EVERY_SEED in t for t in tests):  # nothing was tested: said as undetermined
            return []
        return ["With one seed, only the test rows can tell methods apart, and nothing shows whether a gap would "
                "hold for another seed: run more seeds (--seeds 0,1,2) before trusting a tie or a ranking."]
    if not any(PAIRED_T in t or SEEDS_ABOVE in t for t in tests):
        return []
    return [f"With {seeds} seeds, a gap counts only once it is {seeds_power(seeds):.1f} times its standard error "
            f"across seeds (with 5 seeds: {seeds_power(5):.1f}), so a tie here can hide a smaller real gap: more "
            f"seeds (--seeds 0,1,2,3,4) resolve smaller ones."]


def _untuned(cfg, methods: list[str]) -> list[str]:
    """Said last: after what the numbers say, how far to trust a ranking of untuned rates."""
    if cfg.tune_lr is not None or len(methods) < 2:
        return []
    rates = "the methods' defaults" if cfg.lr is None else f"one rate for all ({cfg.lr:g}, --lr)"
    return [f"The learning rates were {rates}, not tuned: rerun with --tune-lr 4 before acting on this ranking."]


def against_baseline(records: list[Record], methods: list[str], ref: str, mean: dict) -> str:
    """Whether each method beats the best baseline, by the same paired tests (and level) as the top group."""
    verdicts: dict[str, list[str]] = {"above": [], "tied with": [], "below": []}
    for m in methods:
        pair = accuracy_group(records, kinds=("method", "baseline"), labels={m, ref}, reference=False)
        if pair.winner == m:
            verdicts["above"].append(m)
        elif pair.winner == ref:
            verdicts["below"].append(m)
        else:  # in one top group: no significant difference (or undetermined)
            verdicts["tied with"].append(m)
    said = [f"{_join(ms)} {'is' if len(ms) == 1 else 'are'} significantly {how} it" if how != "tied with"
            else f"{_join(ms)} {'is' if len(ms) == 1 else 'are'} not significantly different from it"
            for how, ms in verdicts.items() if ms]
    return (f"Against the best classical baseline, {ref} (test accuracy {mean[ref]['acc']:.3f}, trained to "
            f"convergence, not budget-matched): " + "; ".join(said) + ".")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def _span(mean: dict, labels: list[str], key: str, fmt: str) -> str:
    values = [mean[label][key] for label in labels]
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"
