"""Across budgets: experiments that differ only in their budget (`--budget 30s,2m,8m`), side by side.

A *family* is the experiments sharing everything but the budget (and the model and data). For each family with two
budgets or more: a table of test accuracy per method and budget, with each budget's top group in bold (the same
paired test as each experiment's own table), a sentence on where the ranking changes, and a plot of test accuracy
against budget with each method's 95% CI as a band.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tabulate import tabulate

from runners.analysis.stats import LOGIT_CI, mean_ci
from runners.settings.config import stable_hash

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment


def family_id(exp: Experiment) -> str:
    """What the experiments of one family share: the experiment less its budget, on the same model and data."""
    r = exp.records[-1]
    key = {k: v for k, v in r.config.experiment().items() if k != "budget"}
    return stable_hash({**key, "model": r.model.get("weights_sha256"), "data": r.data.get("content_sha256")})


def families(exps: list[Experiment]) -> dict[str, dict[str, Experiment]]:
    """Family id → {budget: the experiment}, for the families with two budgets or more, the budgets in increasing
    order."""
    found: dict[str, dict[str, Experiment]] = {}
    for exp in exps:
        if exp.records:
            found.setdefault(family_id(exp), {})[exp.config.budget] = exp
    return {fid: dict(sorted(by.items(), key=lambda kv: kv[1].budget.amount))
            for fid, by in found.items() if len(by) > 1}


def across_budgets(exps: list[Experiment], plots: Path) -> dict[str, str]:
    """A markdown section (table, sentence, plot) per family of experiments that differ only in budget, by the
    family's id."""
    from runners.analysis.plots import write_budget_plot

    sections = {}
    for fid, by_budget in families(exps).items():
        budgets = list(by_budget)
        labels = list(dict.fromkeys(label for exp in by_budget.values() for label in exp.rows))
        tops = {b: exp.group for b, exp in by_budget.items()}  # each budget's own table's top group
        rows = []
        for label in labels:
            cells = [label]
            for b, exp in by_budget.items():
                runs = exp.rows[label].ok if label in exp.rows else []
                s = mean_ci([r.metrics.accuracy for r in runs], share=True)
                text = "–" if s.mean is None else f"{s.mean:.4f}" + (
                    f" [{s.lo:.3f}, {s.hi:.3f}]" if s.lo is not None else "")
                lr = runs[0].config.lr if runs and runs[0].config.tune_lr else None
                text += f" (lr {lr:.3g})" if lr else ""
                cells.append(f"**{text}**" if label in tops[b].members and len(tops[b].members) < len(
                    tops[b].comparisons) + 1 else text)
            rows.append(cells)
        table = tabulate(rows, headers=["method", *(f"test acc @ {b}" for b in budgets)], tablefmt="github",
                         disable_numparse=True)
        path = write_budget_plot(by_budget, plots / f"budgets-{fid}-accuracy_vs_budget.png")
        ids = ", ".join(exp.id for exp in by_budget.values())
        sections[fid] = (
            f"## Across budgets ({', '.join(budgets)})\n\nExperiments {ids}: the same comparison at each budget. "
            f"{ranking_sentence(tops)}\n\n{table}\n\n- **Cells:** test accuracy, mean [{LOGIT_CI}] over seeds; bold: "
            f"that budget's top group (the test under its own table)\n\n"
            f"![accuracy_vs_budget](plots/{path.name})\n")
    return sections


def ranking_sentence(tops: dict) -> str:
    """Where the ranking changes: each budget's best method and top group, generated from the tests."""
    parts = []
    for budget, group in tops.items():
        if group.best is None:
            parts.append(f"at {budget}, no method beats "
                         f"{group.reference.name if group.reference else 'the others'}")
            continue
        members = sorted(group.members, key=lambda m: m != group.best)
        said = group.best if len(members) == 1 else f"{group.best} (top group: {', '.join(members)})"
        parts.append(f"at {budget}, {said}")
    bests = [g.best for g in tops.values() if g.best]
    change = ("The best method changes with the budget: " if len(set(bests)) > 1 else
              "The best method is the same at every budget: ")
    return change + "; ".join(parts) + "."
