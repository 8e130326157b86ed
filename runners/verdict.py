"""The verdict of one experiment, from its records: the top group by test accuracy (a paired test, Holm-corrected),
and two or three plain sentences on which methods to use and what the cheapest costs in accuracy."""
from __future__ import annotations

import statistics

import numpy as np

from runners.record import Record
from runners.records import row_label
from runners.scores import expand_predictions
from runners.stats import TopGroup, top_group


def accuracy_group(records: list[Record], alpha: float = 0.05, kinds: tuple[str, ...] = ("method",),
                   labels: set[str] | None = None) -> TopGroup:
    """The top group by test accuracy over the fine-tuning rows (baselines are references, not candidates), or over
    the rows of `kinds` named in `labels`. Seeds pair runs across rows; stored predictions pair test examples where
    rows share fewer than two seeds."""
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
    return top_group(per_seed, higher_is_better=True, alpha=alpha, per_example=per_example or None)


def sentences(records: list[Record], group: TopGroup) -> list[str]:
    """Two or three sentences a user can act on, generated from the numbers (never written by hand)."""
    ok = [r for r in records if r.ok]
    rows = {}
    for r in ok:
        rows.setdefault(row_label(r), []).append(r)
    mean = {label: {"acc": statistics.fmean(x.metrics.accuracy for x in rs),
                    "mem": statistics.fmean(x.measurements.peak_memory_mib for x in rs),
                    "time": statistics.fmean(x.measurements.train_seconds for x in rs),
                    "kind": rs[0].method.kind} for label, rs in rows.items()}
    methods = [label for label in mean if mean[label]["kind"] == "method"]
    if not methods:
        return ["No fine-tuning run ended ok: there is nothing to recommend."]
    best = group.best or methods[0]  # a single method is its own top group, with nothing to test it against
    members = [m for m in group.members if m in mean] or [best]
    if len(methods) == 1:
        out = [f"{best} is the only method that ended ok here (test accuracy {mean[best]['acc']:.3f}): there is "
               f"nothing to rank it against."]
    elif len(members) == len(methods):
        both = "Both methods are" if len(methods) == 2 else f"All {len(methods)} methods are"
        out = [f"{both} tied at this budget: none is significantly worse than the best "
               f"({best}, test accuracy {mean[best]['acc']:.3f}) by the test below."]
    elif len(members) == 1:
        out = [f"{best} is the best method at this budget (test accuracy {mean[best]['acc']:.3f}); "
               f"every other method is significantly worse by the test below."]
    else:
        out = [f"The top group at this budget is {_join(members)} (test accuracy "
               f"{_span(mean, members, 'acc', '{:.3f}')}): none of them is significantly worse than the best, "
               f"{best}, by the test below."]
    cfg = ok[-1].config
    if cfg.tune_lr is not None:  # say on what footing the methods met
        out.insert(0, "Each method trained at its own tuned learning rate (the tuned lr column).")
    untuned = None
    if cfg.tune_lr is None and len(methods) > 1:  # said last: after what the numbers say, how far to trust them
        rates = "the methods' defaults" if cfg.lr is None else f"one rate for all ({cfg.lr:g}, --lr)"
        untuned = (f"The learning rates were {rates}, not tuned: rerun with --tune-lr 4 before acting on this "
                   f"ranking.")
    cheap_mem = min(members, key=lambda m: mean[m]["mem"])
    cheap_time = min(members, key=lambda m: mean[m]["time"])
    if len(members) > 1:
        if cheap_mem == cheap_time:
            out.append(f"Of these, {cheap_mem} is the cheapest in both memory ({mean[cheap_mem]['mem']:,.0f} MiB) "
                       f"and training time ({mean[cheap_mem]['time']:.1f} s).")
        else:
            out.append(f"Of these, {cheap_mem} needs the least memory ({mean[cheap_mem]['mem']:,.0f} MiB) and "
                       f"{cheap_time} the least training time ({mean[cheap_time]['time']:.1f} s).")
    cheapest = min(methods, key=lambda m: (mean[m]["mem"], mean[m]["time"]))
    if cheapest not in members:
        lost = mean[best]["acc"] - mean[cheapest]["acc"]
        out.append(f"The cheapest method overall, {cheapest} ({mean[cheapest]['mem']:,.0f} MiB, "
                   f"{mean[cheapest]['time']:.1f} s), gives up {lost:.3f} of test accuracy against {best}.")
    baselines = [label for label in mean if mean[label]["kind"] == "baseline"]
    if baselines:
        out.append(against_baseline(records, methods, max(baselines, key=lambda b: mean[b]["acc"]), mean))
    return out + ([untuned] if untuned else [])


def against_baseline(records: list[Record], methods: list[str], ref: str, mean: dict) -> str:
    """Whether each method beats the best baseline, by the same paired test (and level) as the top group."""
    verdicts: dict[str, list[str]] = {"above": [], "tied with": [], "below": []}
    for m in methods:
        pair = accuracy_group(records, kinds=("method", "baseline"), labels={m, ref})
        if pair.winner == m:
            verdicts["above"].append(m)
        elif pair.winner == ref:
            verdicts["below"].append(m)
        else:  # in one top group: no significant difference (or untestable)
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
