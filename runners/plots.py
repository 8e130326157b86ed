"""Plots beside the tables, from the records alone: accuracy over the budget, and accuracy against cost."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from runners.budget import Budget
from runners.records import row_label

UNIT_KEYS = {"epochs": "samples", "samples": "samples", "steps": "steps", "tokens": "tokens", "flops": "flops",
             "seconds": "seconds"}


def write_plots(records: list[dict], out: Path, prefix: str = "") -> list[Path]:
    """`<prefix>accuracy_vs_budget.png` and `<prefix>accuracy_vs_cost.png` for one experiment; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in records if r["status"] == "ok" and r.get("curve")]
    if not ok:
        return []
    labels = list(dict.fromkeys(row_label(r) for r in ok))
    unit = Budget.parse(ok[-1]["config"]["budget"]).unit
    key = UNIT_KEYS[unit]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        runs = [r for r in ok if row_label(r) == label]
        n = min(len(r["curve"]) for r in runs)
        x = np.mean([[p[key] for p in r["curve"][:n]] for r in runs], axis=0)
        y = np.array([[p["val_accuracy"] for p in r["curve"][:n]] for r in runs])
        line, = ax.plot(x, y.mean(0), marker="o", label=label)
        if len(runs) > 1:  # the band spans the seeds
            ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel(f"budget spent ({key})")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Accuracy as the budget is spent ({ok[-1]['config']['budget']} per run)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / f"{prefix}accuracy_vs_budget.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, (metric, name) in zip(axes, [("peak_memory_mib", "peak memory (MiB)"),
                                         ("train_seconds", "training time (s)")]):
        points = []
        for label in labels:
            runs = [r for r in ok if row_label(r) == label]
            cost = float(np.mean([r["measurements"][metric] for r in runs]))
            acc = float(np.mean([r["metrics"]["accuracy"] for r in runs]))
            points.append((cost, acc, label))
            ax.scatter(cost, acc)
            ax.annotate(label, (cost, acc), fontsize=8, xytext=(4, 4), textcoords="offset points")
        # from zero, so that equal costs look equal (under a time budget every run trains the same seconds);
        # room on the right for the labels
        ax.set_xlim(0, 1.3 * max(p[0] for p in points))
        front = pareto_front(points)
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle("Accuracy against cost (mean over seeds)")
    paths.append(_save(fig, out / f"{prefix}accuracy_vs_cost.png"))
    plt.close(fig)
    return paths


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points no other point beats on both cost (lower) and accuracy (higher), by increasing cost."""
    front, best = [], float("-inf")
    for cost, acc, label in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((cost, acc, label))
            best = acc
    return front


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    os.replace(tmp, path)  # atomic, like the records and tables
    return path
