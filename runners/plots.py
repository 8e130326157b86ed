"""Plots beside the tables, from the records alone: accuracy over the budget, and accuracy against cost."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runners.budget import Budget
from runners.record import Record
from runners.records import replacing, row_label

UNIT_KEYS = {"epochs": "samples", "samples": "samples", "steps": "steps", "tokens": "tokens", "flops": "flops",
             "seconds": "seconds"}


def write_plots(records: list[Record], out: Path, prefix: str = "") -> list[Path]:
    """`<prefix>accuracy_vs_budget.png` and `<prefix>accuracy_vs_cost.png` for one experiment; returns the paths.
    A method whose runs did not end ok has no point to draw; it is still named, marked failed, in both plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return []
    labels = list(dict.fromkeys(row_label(r) for r in records))
    runs = {label: [r for r in records if row_label(r) == label] for label in labels}
    ok = {label: [r for r in rs if r.ok] for label, rs in runs.items()}
    names = {label: legend_name(label, rs) for label, rs in runs.items()}
    drawn = [label for label in labels if ok[label]]
    failed = [names[label] for label in labels if not ok[label]]
    budget = records[-1].config.budget
    key = UNIT_KEYS[Budget.parse(budget).unit]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in drawn:
        n = min(len(r.curve) for r in ok[label])
        x = np.mean([[getattr(p, key) for p in r.curve[:n]] for r in ok[label]], axis=0)
        y = np.array([[p.val_accuracy for p in r.curve[:n]] for r in ok[label]])
        line, = ax.plot(x, y.mean(0), marker="o", label=names[label])
        if len(ok[label]) > 1:  # the band spans the seeds
            ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.15)
    _name_failed(ax, failed)
    ax.set_xlabel(f"budget spent ({key})")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Accuracy as the budget is spent ({budget} per run)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / f"{prefix}accuracy_vs_budget.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, (metric, name) in zip(axes, [("peak_memory_mib", "peak memory (MiB)"),
                                         ("train_seconds", "training time (s)")]):
        points = []
        for label in drawn:
            cost = float(np.mean([getattr(r.measurements, metric) for r in ok[label]]))
            acc = float(np.mean([r.metrics.accuracy for r in ok[label]]))
            points.append((cost, acc, label))
            ax.scatter(cost, acc)
            ax.annotate(names[label], (cost, acc), fontsize=8, xytext=(4, 4), textcoords="offset points")
        if points:
            # from zero, so that equal costs look equal (under a time budget every run trains the same seconds);
            # room on the right for the labels
            ax.set_xlim(0, 1.3 * max(p[0] for p in points))
            front = pareto_front(points)
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
        _name_failed(ax, failed)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle("Accuracy against cost (mean over seeds)")
    paths.append(_save(fig, out / f"{prefix}accuracy_vs_cost.png"))
    plt.close(fig)
    return paths


def legend_name(label: str, runs: list[Record]) -> str:
    """A method's name in a plot: its label, marked when some of its runs did not end ok."""
    bad = [r for r in runs if not r.ok]
    if not bad:
        return label
    statuses = ", ".join(dict.fromkeys(r.status.value for r in bad))
    if len(bad) == len(runs):
        return f"{label} (failed: {statuses})"
    return f"{label} ({len(bad)} of {len(runs)} seeds failed: {statuses})"


def _name_failed(ax, names: list[str]) -> None:
    """Legend entries without points, for the methods that have none to draw: they are missing, not forgotten."""
    for name in names:
        ax.plot([], [], ls="none", marker="x", color="tab:red", label=name)


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points no other point beats on both cost (lower) and accuracy (higher), by increasing cost."""
    front, best = [], float("-inf")
    for cost, acc, label in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((cost, acc, label))
            best = acc
    return front


def _save(fig, path: Path) -> Path:
    with replacing(path) as f:  # atomic, like the records and tables, and readable like them
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path
