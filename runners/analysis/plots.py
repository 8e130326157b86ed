"""Plots beside the tables, from the experiment view alone: accuracy over the budget, accuracy against cost (training's
and serving's), the learning-rate search, and accuracy across budgets."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from runners.analysis.stats import mean_ci
from runners.core.files import replacing
from runners.store.schema import Record

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment


def write_plots(exp: Experiment, out: Path, prefix: str = "") -> list[Path]:
    """`<prefix>accuracy_vs_budget.png`, `<prefix>accuracy_vs_cost.png` and, where the rates were searched,
    `<prefix>lr_search.png` for one experiment; returns the paths. A method whose runs did not end ok has no point
    to draw; it is still named, marked failed, in the plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not exp.records:
        return []
    labels = list(exp.rows)
    ok = {label: row.ok for label, row in exp.rows.items()}
    names = {label: legend_name(label, row.runs) for label, row in exp.rows.items()}
    drawn = [label for label in labels if ok[label]]
    failed = [names[label] for label in labels if not ok[label]]
    budget, key = exp.config.budget, exp.unit
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

    costs = [("peak_memory_mib", "peak memory (MiB)")]
    if key != "seconds":  # under a time budget every run trains the same seconds: a vertical line says nothing
        costs.append(("train_seconds", "training time (s)"))
    fig, axes = plt.subplots(1, len(costs), figsize=(5.5 * len(costs) + 0.5, 4.5), sharey=True, squeeze=False)
    for ax, (metric, name) in zip(axes[0], costs):
        points = []
        for label in drawn:
            cost = mean_ci([getattr(r.measurements, metric) for r in ok[label]], positive=True)
            acc = mean_ci([r.metrics.accuracy for r in ok[label]], share=True)
            points.append((cost.center, acc.mean, label))
            ax.errorbar(cost.center, acc.mean, xerr=_err(cost.center, cost), yerr=_err(acc.mean, acc), fmt="o",
                        capsize=3)
            ax.annotate(names[label], (cost.center, acc.mean), fontsize=8, xytext=(4, 4), textcoords="offset points")
        if points:
            # from zero, so that equal costs look equal; room on the right for the labels
            ax.set_xlim(0, 1.3 * max(p[0] for p in points))
            front = pareto_front(points)
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
        _name_failed(ax, failed)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test accuracy")
    fig.suptitle("Accuracy against cost: mean over seeds, bars the 95% CI" + (
        "" if key != "seconds" else f" (no time panel: every run trained {budget})"), fontsize=10)
    paths.append(_save(fig, out / f"{prefix}accuracy_vs_cost.png"))
    plt.close(fig)
    if exp.trials:
        paths.append(write_lr_plot(exp, out / f"{prefix}lr_search.png"))
    if any(r.serving is not None for label in drawn for r in ok[label]):
        paths.append(write_serving_plot({label: ok[label] for label in drawn}, names, failed,
                                        out / f"{prefix}accuracy_vs_latency.png"))
    return paths


def write_serving_plot(ok: dict[str, list[Record]], names: dict[str, str], failed: list[str], path: Path) -> Path:
    """Test accuracy against serving latency at batch 1 (the serve stage), with its Pareto front: what each method
    costs per request once deployed (merged where it merges), beside what it scores."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = []
    for label, runs in ok.items():
        served = [r for r in runs if r.serving is not None]
        if not served:
            continue
        latency = mean_ci([r.serving.latency_ms for r in served], positive=True)
        acc = mean_ci([r.metrics.accuracy for r in served], share=True)
        points.append((latency.center, acc.mean, label))
        merged = served[0].serving.deployed == "merged"
        extra = served[0].serving.extra_tokens
        ax.errorbar(latency.center, acc.mean, xerr=_err(latency.center, latency), yerr=_err(acc.mean, acc),
                    fmt="s" if merged else "o", capsize=3)
        ax.annotate(names[label] + (" (merged)" if merged else "") + (f" (+{extra} tokens)" if extra else ""),
                    (latency.center, acc.mean), fontsize=8, xytext=(4, 4), textcoords="offset points")
    if points:
        ax.set_xlim(0, 1.3 * max(p[0] for p in points))
        front = pareto_front(points)
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
    _name_failed(ax, failed)
    device = next((r.serving.device_name for runs in ok.values() for r in runs if r.serving), "")
    return _finish(fig, ax, path, f"latency per request, batch 1 (ms, {device})",
                   "Accuracy against serving latency: mean over seeds, bars the 95% CI; ■ merged")


def _err(center: float, s) -> list[list[float]] | None:
    """matplotlib's asymmetric error bar from a Summary's interval (none for one seed)."""
    if s.lo is None:
        return None
    return [[max(center - s.lo, 0.0)], [max(s.hi - center, 0.0)]]


def write_lr_plot(exp: Experiment, path: Path) -> Path:
    """The search of a tuned experiment: validation metric against learning rate (log scale), one line per method,
    the spread over search seeds as a band, the chosen rate starred; how flat a line is says how forgiving the
    method is of its rate."""
    import matplotlib.pyplot as plt

    cfg = exp.config
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, c in exp.choices.items():
        lrs = [lr for lr in sorted(c.per_seed) if c.per_seed[lr]]
        if not lrs:
            ax.plot([], [], ls="none", marker="x", color="tab:red", label=f"{label} (no trial ended ok)")
            continue
        mean = [float(np.mean(c.per_seed[lr])) for lr in lrs]
        line, = ax.plot(lrs, mean, marker="o", label=label + (f" (best at the {c.edge} end)" if c.edge else ""))
        if max(len(c.per_seed[lr]) for lr in lrs) > 1:
            ax.fill_between(lrs, [min(c.per_seed[lr]) for lr in lrs], [max(c.per_seed[lr]) for lr in lrs],
                            color=line.get_color(), alpha=0.15)
        bad = [lr for lr, v in c.scores.items() if v is None]
        if bad:  # a rate where a trial diverged or failed: marked at the bottom of the axis
            ax.plot(bad, [min(mean)] * len(bad), ls="none", marker="x", color=line.get_color())
        if c.lr is not None:
            ax.plot([c.lr], [c.score], marker="*", markersize=16, color=line.get_color(), markeredgecolor="k")
        if c.noise:  # the tie band: rates scoring inside it tie with the best (runners.planning.search's tie rule)
            top = c.scores[c.best]
            ax.axhspan(top - c.noise, top, color=line.get_color(), alpha=0.08)
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel(f"validation {cfg.select_on} at the end of the budget")
    ax.set_title(f"Learning-rate search ({cfg.budget} per trial; ★ chosen, × a trial that did not end ok;\n"
                 f"band: one standard error of validation noise below the best, the rates in it tie)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return path


def write_budget_plot(by_budget: dict[str, Experiment], path: Path) -> Path:
    """Test accuracy against budget, one line per method with its 95% CI over seeds as a band (error bars where
    there is one budget's worth of seeds), for experiments that differ only in budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(by_budget)
    parsed = [exp.budget for exp in by_budget.values()]
    x_all = [p.amount for p in parsed]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = list(dict.fromkeys(label for exp in by_budget.values() for label in exp.rows))
    for label in labels:
        xs, ys, los, his = [], [], [], []
        for x, exp in zip(x_all, by_budget.values()):
            row = exp.rows.get(label)
            s = mean_ci([r.metrics.accuracy for r in row.ok] if row else [], share=True)
            if s.mean is None:
                continue
            xs.append(x)
            ys.append(s.mean)
            los.append(s.lo if s.lo is not None else s.mean)  # the logit interval: within [0, 1]
            his.append(s.hi if s.hi is not None else s.mean)
        if not xs:
            continue
        kind = next(exp.rows[label].kind for exp in by_budget.values() if label in exp.rows)
        line, = ax.plot(xs, ys, marker="o", ls="--" if kind == "baseline" else "-",
                        label=label + (" (baseline)" if kind == "baseline" else ""))
        ax.errorbar(xs, ys, yerr=[np.subtract(ys, los), np.subtract(his, ys)], fmt="none", capsize=3,
                    color=line.get_color())
        ax.fill_between(xs, los, his, color=line.get_color(), alpha=0.12)
    if max(x_all) / min(x_all) >= 4:
        ax.set_xscale("log")
    ax.set_xticks(x_all, budgets)
    ax.minorticks_off()
    return _finish(fig, ax, path, f"budget per run ({parsed[0].unit})",
                   "Test accuracy against budget: mean over seeds, band the 95% CI (within [0, 1])")


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


def _finish(fig, ax, path: Path, xlabel: str, title: str) -> Path:
    """Label a one-panel plot of test accuracy, save it and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    import matplotlib.pyplot as plt  # imported where a plot is drawn, as everywhere in this module

    plt.close(fig)
    return path


def _save(fig, path: Path) -> Path:
    with replacing(path) as f:  # atomic, like the records and tables, and readable like them
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path
