"""Comparison tables, derived from run records alone (through the experiment view, runners.analysis.experiment):
one row per method spec with every column's mean, interval and seeds (a pandas frame, the csv's rows), and its
markdown (tabulate).

Each cell is a mean over seeds with its 95% interval (runners.analysis.stats); the top group by test accuracy is
bold, decided by paired tests with Holm's correction (runners.analysis.ranking), and the tests, correction and level
are named under it.
"""
from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from runners.analysis.columns import (
    RANK_BY,
    SERVING_TEXT,
    TO_TARGET,
    VS_MAJORITY,
    Column,
    columns,
    reach,
)
from runners.analysis.experiment import Experiment
from runners.analysis.ranking import UNDETERMINED
from runners.analysis.selection import Choice
from runners.analysis.stats import mean_ci, reach_summary

EARLIER_RULE = "highest score (before the tie rule)"  # the search's rule before the tie rule (analysis.selection)


def summarize(exp: Experiment) -> tuple[pd.DataFrame, dict[str, Column]]:
    """One row per method spec: parameters; mean, sd, 95% interval and each seed's value of every column; the
    budget to reach the target as an interval; whether the row is in the top group by test accuracy and how it did
    against always predicting the majority class; and, where its rate was searched, the chosen rate, its flags and
    the search's cost."""
    cols, group, target = columns(exp), exp.group, exp.target
    rows = []
    for label, r in exp.rows.items():
        ok = r.ok
        row = {"method": label, "kind": r.kind, "seeds": ";".join(str(x.seed) for x in ok),
               "status": "; ".join(f"seed {x.seed}: {x.status.value}: {x.error}"
                                   for x in r.runs if not x.ok) or "ok"}  # a row all failed says why
        if ok and ok[0].measurements.trainable_params is not None:  # a baseline trains no network
            m = ok[0].measurements
            row["trainable params"] = m.trainable_params
            row["trainable %"] = 100 * m.trainable_params / m.total_params
            row["micro-batch"] = m.micro_batch
        for name, col in cols.items():
            values = [v for v in (col.get(x) for x in ok) if v is not None]
            s = mean_ci(values, positive=col.positive, share=col.share)
            row.update({name: s.mean, f"{name} center": s.center, f"{name} sd": s.sd, f"{name} ci_lo": s.lo,
                        f"{name} ci_hi": s.hi, f"{name} values": ";".join(f"{v:.6g}" for v in values)})
        if ok and ok[0].serving is not None:
            serving = ok[0].serving
            diff = f" (Δ {serving.merge_max_abs_diff:.1g})" if serving.merge_max_abs_diff is not None else ""
            row.update({"mergeable": serving.mergeable + diff, "extra tokens": serving.extra_tokens})
        if target is not None and r.kind == "method":
            got = reach_summary([reach(x, target, exp.unit) for x in ok])
            row.update({TO_TARGET: got.hi, f"{TO_TARGET} lo": got.lo, f"{TO_TARGET} reached": got.reached,
                        f"{TO_TARGET} runs": got.runs})
        if r.choice is not None:
            row.update(_choice_cells(r.choice))
        comparison = group.comparisons.get(label)
        row.update({"top group": label in group.members,
                    "p vs best": comparison.p if comparison else None,
                    "p vs best (Holm)": comparison.p_adjusted if comparison else None})
        if group.reference is not None and label in group.against_reference:
            vs = group.against_reference[label]
            row.update({VS_MAJORITY: "yes" if vs.above else UNDETERMINED if vs.test == UNDETERMINED else "no",
                        "p vs majority": vs.p, "p vs majority (Holm)": vs.p_adjusted})
        rows.append(row)
    df = pd.DataFrame(rows)
    df = df.sort_values(RANK_BY, ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    return df, cols


def _choice_cells(choice: Choice) -> dict:
    return {"lr": choice.lr, "lr edge": choice.edge or "", "lr outside range": choice.outside,
            "lr range": "" if choice.range is None else f"{choice.range[0]:g}..{choice.range[1]:g}",
            "lr range source": choice.range_source or "", "lr tied": ";".join(f"{x:g}" for x in choice.tied),
            "lr rule": EARLIER_RULE if choice.earlier_rule else "one standard error", "search trials": choice.trials,
            "search seconds": choice.seconds, "search flops": choice.flops,
            "search failures": "; ".join(choice.failures)}


def to_markdown(df: pd.DataFrame, cols: dict[str, Column], batch_size: int | None = None,
                unit_fmt: str = "{:,.0f}", majority: str = "always predicting the majority class") -> str:
    micro = df["micro-batch"].dropna() if "micro-batch" in df else pd.Series(dtype=float)
    show_micro = batch_size is not None and (micro != batch_size).any()
    show_target = TO_TARGET in df
    tuned = "search trials" in df and df["search trials"].notna().any()
    headers = ["method", "trainable params", "trainable %"] + (["tuned lr"] if tuned else [])
    headers += [f"{n} {c.better}" for n, c in cols.items()]
    serving = [n for n in SERVING_TEXT if n in df and df[n].notna().any()]
    headers += serving
    headers += [f"{TO_TARGET} ↓"] if show_target else []
    headers += ["search cost"] if tuned else []
    show_status = (df["status"] != "ok").any()
    methods = df[df["kind"] == "method"] if "kind" in df else df
    # said in each row only where some method does not beat the majority class (the footer says that all do)
    show_vs = VS_MAJORITY in df and (methods[VS_MAJORITY].fillna("yes") != "yes").any()
    headers += ["vs majority class"] if show_vs else []
    bold = bool(methods["top group"].any()) and not methods["top group"].all()  # all tied: nothing stands out
    body = []
    for _, row in df.iterrows():
        name = row["method"] + (" (baseline)" if row.get("kind") == "baseline" else "")
        cells = [name, _fmt(row.get("trainable params"), "{:,.0f}"), _fmt(row.get("trainable %"), "{:.3g}")]
        search = _search_cells(row) if tuned else []
        cells += search[:1]
        for col_name, col in cols.items():
            text = _cell(row, col_name, col)
            cells.append(f"**{text}**" if bold and col_name == RANK_BY and row["top group"] else text)
        cells += [_fmt(row.get(n), "{}") if n == "mergeable" else _fmt(row.get(n), "{:.0f}") for n in serving]
        if show_target:
            cells.append(_reach_cell(row, unit_fmt))
        cells += search[1:]
        cells += [_vs_cell(row, majority)] if show_vs else []
        extra = ([_fmt(row.get("micro-batch"), "{:.0f}")] if show_micro else []) + (
            [_status_cell(row["status"])] if show_status else [])
        body.append(cells + extra)
    headers += (["micro-batch"] if show_micro else []) + (["status"] if show_status else [])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _vs_cell(row: pd.Series, majority: str) -> str:
    """Whether the row beats always predicting the majority class, by the tests under the table."""
    said = row.get(VS_MAJORITY)
    if not isinstance(said, str):
        return "–"
    p = "" if pd.isna(row.get("p vs majority (Holm)")) else f" (p {row['p vs majority (Holm)']:.2g})"
    return {"yes": f"above{p}", "no": f"no better than {majority}{p}"}.get(said, said)


def _search_cells(row: pd.Series) -> list[str]:
    """The chosen rate (⚠ where it is the lowest or highest tried: the optimum may lie beyond; where it is outside
    the range searched; where that range is the default of a method that declares none) and what the search
    spent: trials × the budget, their measured seconds (training, evaluation, compilation) and training FLOPs."""
    if pd.isna(row.get("search trials")):
        return ["–", "–"]
    lr = "none" if pd.isna(row.get("lr")) else f"{row['lr']:.3g}"
    flags = [f"{row['lr edge']} end" if row.get("lr edge") else "",
             f"outside {row['lr range']}" if row.get("lr outside range") is True else "",
             "default range" if row.get("lr range source") == "default" else ""]
    flags = [f for f in flags if f]
    lr += "†" if row.get("lr rule") == EARLIER_RULE else ""
    lr += f" ⚠ {', '.join(flags)}" if flags else ""
    return [lr, f"{int(row['search trials'])} × budget, {row['search seconds']:,.0f} s, "
                       f"{row['search flops']:.3g} FLOPs"]


def _status_cell(status: str, width: int = 160) -> str:
    """The status column: each failed seed with its reason, cut to fit a table (the record holds the whole text)."""
    text = status if len(status) <= width else status[:width - 1] + "…"
    return text.replace("|", "\\|")  # a `|` in an error message would split the markdown row


def _cell(row: pd.Series, name: str, col: Column) -> str:
    """`mean ± sd [lo, hi]`, or for a positive quantity `geometric mean [lo, hi]`; the value alone for one seed."""
    fmt = col.fmt
    if pd.isna(row[f"{name} ci_lo"]):
        return _fmt(row[name], fmt)
    lo, hi = fmt.format(row[f"{name} ci_lo"]), fmt.format(row[f"{name} ci_hi"])
    if col.positive:
        return f"{fmt.format(row[f'{name} center'])} [{lo}, {hi}]"
    return f"{fmt.format(row[name])} ± {fmt.format(row[f'{name} sd'])} [{lo}, {hi}]"


def _reach_cell(row: pd.Series, fmt: str) -> str:
    runs, reached = row.get(f"{TO_TARGET} runs"), row.get(f"{TO_TARGET} reached")
    if pd.isna(runs) or not runs:
        return "–"
    if not reached:
        return f"not reached (0/{int(runs)} seeds)"
    span = f"({fmt.format(row[f'{TO_TARGET} lo'])}, {fmt.format(row[TO_TARGET])}]"
    return span if reached == runs else f"{span}, {int(reached)}/{int(runs)} seeds"


def _fmt(value, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else fmt.format(value)
