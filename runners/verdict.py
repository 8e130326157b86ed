"""The verdict of one experiment, from its records: the top group by test accuracy (a paired test, Holm-corrected),
and two or three plain sentences on which methods to use and what the cheapest costs in accuracy."""
from __future__ import annotations

import statistics

import numpy as np

from runners.record import Record
from runners.records import row_label
from runners.scores import expand_predictions
from runners.stats import TopGroup, top_group


def accuracy_group(records: list[Record], alpha: float = 0.05) -> TopGroup:
    """The top group by test accuracy over the fine-tuning rows (baselines are references, not candidates).
    Seeds pair runs across rows; stored predictions pair test examples where rows share fewer than two seeds."""
    per_seed: dict[str, dict[int, float]] = {}
    per_example: dict[str, dict[int, np.ndarray]] = {}
    for r in records:
        if not r.ok or r.method.kind != "method":
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
    if not methods or group.best is None:
        return ["No fine-tuning run ended ok: there is nothing to recommend."]
    members = [m for m in group.members if m in mean]
    if len(members) == len(methods) and len(methods) > 1:
        out = [f"All {len(methods)} methods are tied at this budget: none is significantly worse than the best "
               f"({group.best}, test accuracy {mean[group.best]['acc']:.3f}) by the test below."]
    elif len(members) == 1:
        out = [f"{group.best} is the best method at this budget (test accuracy {mean[group.best]['acc']:.3f}); "
               f"every other method is significantly worse by the test below."]
    else:
        out = [f"The top group at this budget is {_join(members)} (test accuracy "
               f"{_span(mean, members, 'acc', '{:.3f}')}): none of them is significantly worse than the best, "
               f"{group.best}, by the test below."]
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
        lost = mean[group.best]["acc"] - mean[cheapest]["acc"]
        out.append(f"The cheapest method overall, {cheapest} ({mean[cheapest]['mem']:,.0f} MiB, "
                   f"{mean[cheapest]['time']:.1f} s), gives up {lost:.3f} of test accuracy against {group.best}.")
    baselines = [label for label in mean if mean[label]["kind"] == "baseline"]
    if baselines:
        ref = max(baselines, key=lambda b: mean[b]["acc"])
        beat = [m for m in methods if mean[m]["acc"] > mean[ref]["acc"]]
        out.append(f"The best classical baseline, {ref}, reaches {mean[ref]['acc']:.3f}; "
                   + (f"{_join(beat)} score{'s' * (len(beat) == 1)} above it (by mean)." if beat
                      else "no fine-tuning method scores above it at this budget."))
    return out


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def _span(mean: dict, labels: list[str], key: str, fmt: str) -> str:
    values = [mean[label][key] for label in labels]
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"
