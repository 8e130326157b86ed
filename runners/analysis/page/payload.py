"""The page's data: for each experiment its rows' values and 95% intervals (from its summary frame), its curves and
its learning-rate search; each family's accuracy across budgets; and every run's details. Built from the experiment
view (runners.analysis.experiment) and the frames the tables are made of, never from a second reading of the
records."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from runners.analysis import tables
from runners.analysis.budgets import families, ranking_sentence
from runners.analysis.columns import Column
from runners.analysis.stats import mean_ci
from runners.store.records import row_label

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment
    from runners.store.schema import Record

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart with each common colour-vision deficiency.
# Black is kept for the Pareto front; yellow comes last (it is the faintest on white).
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442"]
FRONT_COLOUR = "#000000"
# Not a column of the markdown table (which keeps its columns): the training FLOPs, for the trade-off plot
FLOPS = "train FLOPs"
FLOPS_COLUMN = Column(lambda r: r.measurements.flops if r.measurements else None, "↓", "{:.3g}", positive=True)
SHARED = ("model", "data", "versions", "method", "git", "device")  # the parts of a run's details many runs share


def plottable(cols: dict[str, Column]) -> dict[str, Column]:
    """The columns a trade-off plot may put on an axis: every metric but the checkpoints' (`val acc @1/4`...), and
    the FLOPs after the training time."""
    items = [(name, col) for name, col in cols.items() if "@" not in name]
    at = next((i + 1 for i, (name, _) in enumerate(items) if name == "train time (s)"), len(items))
    return dict([*items[:at], (FLOPS, FLOPS_COLUMN), *items[at:]])


def with_flops(exp: Experiment, df: pd.DataFrame) -> pd.DataFrame:
    """The summary frame with the FLOPs column added, its cells made as summarize makes every other one."""
    df = df.copy()
    cells = []
    for label in df["method"]:
        values = [v for v in (FLOPS_COLUMN.get(r) for r in exp.rows[label].ok) if v is not None]
        s = mean_ci(values, positive=True)
        cells.append({FLOPS: s.mean, f"{FLOPS} center": s.center, f"{FLOPS} sd": s.sd, f"{FLOPS} ci_lo": s.lo,
                      f"{FLOPS} ci_hi": s.hi})
    return pd.concat([df, pd.DataFrame(cells, index=df.index)], axis=1)


def payload(exps: list[Experiment], frames: dict[str, pd.DataFrame], cols: dict[str, dict[str, Column]],
            dataset: str) -> dict:
    """Everything the page's script draws, as JSON-ready data. `frames` and `cols`: each experiment's summary frame
    and columns (runners.analysis.tables.summarize), by experiment id."""
    shown = [e for e in exps if e.id in frames]
    labels = list(dict.fromkeys(label for e in shown for label in [*e.rows, *e.choices]))  # each its own style
    shared: dict[str, dict[str, int]] = {k: {} for k in SHARED}
    runs: dict[str, dict] = {}
    for e in shown:
        for r in [*e.records, *e.trials]:
            runs[r.run_id] = details(r, shared)
    return {"dataset": dataset, "palette": OKABE_ITO, "front": FRONT_COLOUR, "labels": labels,
            "experiments": [experiment(e, frames[e.id], cols[e.id]) for e in shown],
            "families": family_plots(shown, frames), "runs": runs,
            "shared": {k: [json.loads(text) for text in seen] for k, seen in shared.items()}}


def experiment(exp: Experiment, df: pd.DataFrame, cols: dict[str, Column]) -> dict:
    metrics = plottable(cols)
    df = with_flops(exp, df)
    rows = []
    for _, row in df.iterrows():
        label = row["method"]
        r = exp.rows[label]
        values = {}
        for name, col in metrics.items():
            center = _num(row.get(f"{name} center"))
            if center is not None:
                values[name] = [center, _num(row.get(f"{name} ci_lo")), _num(row.get(f"{name} ci_hi")),
                                tables._cell(row, name, col)]  # the markdown's own cell: mean ± sd [lo, hi]
        rows.append({"label": label, "kind": r.kind, "top": bool(row["top group"]),
                     "seeds": [x.seed for x in r.ok], "bad": [f"seed {x.seed}: {x.status.value}" for x in r.runs
                                                              if not x.ok],
                     "runs": [x.run_id for x in r.runs],
                     "trials": [t.run_id for t in exp.trials if row_label(t) == label], "values": values})
    return {"id": exp.id, "budget": exp.config.budget, "unit": exp.unit, "tuned": exp.config.tune_lr is not None,
            "select_on": exp.config.select_on, "rows": rows, "curves": curves(exp), "search": search(exp),
            "metrics": {name: {"better": col.better, "scale": "log" if col.positive else "logit" if col.share
                               else "t"} for name, col in metrics.items()}}


def curves(exp: Experiment) -> list[dict]:
    """Validation accuracy as the budget is spent, per row: the mean over seeds, and the seeds' range as a band (as
    runners.analysis.plots draws it)."""
    out = []
    for label, row in exp.rows.items():
        ok = [r for r in row.ok if r.curve]
        if not ok:
            continue
        n = min(len(r.curve) for r in ok)
        x = np.mean([[getattr(p, exp.unit) for p in r.curve[:n]] for r in ok], axis=0)
        y = np.array([[p.val_accuracy for p in r.curve[:n]] for r in ok])
        out.append({"label": label, "x": x.tolist(), "y": y.mean(0).tolist(), "lo": y.min(0).tolist(),
                    "hi": y.max(0).tolist(), "seeds": len(ok)})
    return out


def search(exp: Experiment) -> list[dict]:
    """Each searched row's validation score against the learning rate: the mean over search seeds, their range,
    the rates whose trials did not end ok, the chosen rate and the tie band (runners.analysis.selection)."""
    out = []
    for label, c in exp.choices.items():
        lrs = [lr for lr in sorted(c.per_seed) if c.per_seed[lr]]
        tie = [c.scores[c.best] - c.noise, c.scores[c.best]] if c.noise and c.best in c.scores else None
        out.append({"label": label, "lr": lrs, "mean": [float(np.mean(c.per_seed[lr])) for lr in lrs],
                    "lo": [min(c.per_seed[lr]) for lr in lrs], "hi": [max(c.per_seed[lr]) for lr in lrs],
                    "failed": [lr for lr, v in c.scores.items() if v is None], "chosen": c.lr, "score": c.score,
                    "edge": c.edge, "tie": tie})
    return out


def family_plots(exps: list[Experiment], frames: dict[str, pd.DataFrame]) -> list[dict]:
    """Test accuracy across the budgets of each family (runners.analysis.budgets), from each budget's summary frame:
    the mean and its 95% interval per row, and the sentence on where the ranking changes."""
    out = []
    for by_budget in families(exps).values():
        lines: dict[str, dict] = {}
        for budget, e in by_budget.items():
            for _, row in frames[e.id].iterrows():
                mean = _num(row.get("test acc"))
                if mean is None:
                    continue
                line = lines.setdefault(row["method"], {"label": row["method"], "kind": row["kind"], "x": [],
                                                        "budget": [], "y": [], "lo": [], "hi": []})
                line["x"].append(e.budget.amount)
                line["budget"].append(budget)
                line["y"].append(mean)
                line["lo"].append(_num(row.get("test acc ci_lo")))
                line["hi"].append(_num(row.get("test acc ci_hi")))
        first = next(iter(by_budget.values()))
        out.append({"budgets": list(by_budget), "amounts": [e.budget.amount for e in by_budget.values()],
                    "unit": first.budget.unit, "experiments": [e.id for e in by_budget.values()],
                    "sentence": ranking_sentence({b: e.group for b, e in by_budget.items()}),
                    "lines": list(lines.values())})
    return out


def details(r: Record, shared: dict[str, dict[str, int]]) -> dict:
    """A run's record less its predictions and curve (its largest parts, drawn or tested elsewhere); the parts many
    runs share are stored once, by index."""
    d = r.model_dump(mode="json", exclude={"predictions", "curve", "schema_"})
    d["label"], d["checkpoints"] = row_label(r), len(r.curve)
    for key in SHARED:
        seen = shared[key]
        d[key] = seen.setdefault(json.dumps(d[key], sort_keys=True), len(seen))
    return d


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
