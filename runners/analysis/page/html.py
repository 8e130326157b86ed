"""The page's plain HTML, readable before any script runs: the experiments with their verdicts and header facts, and
the comparison table of every row of every experiment, each cell the markdown table's own text (the script only
sorts, filters and draws)."""
from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

import pandas as pd

from runners.analysis import tables
from runners.analysis.columns import RANK_BY, SERVING_TEXT, TO_TARGET, VS_MAJORITY, Column
from runners.analysis.headers import header

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment

REACH_FMT = {"flops": "{:.3g}", "seconds": "{:.1f}"}  # as runners.analysis.section prints the budget to target


def inline(markdown: str) -> str:
    """One line of the tables' markdown (bold and code spans) as HTML."""
    text = escape(markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def experiments_list(exps: list[Experiment], frames: dict[str, pd.DataFrame]) -> str:
    """Each experiment as a disclosure: a one-line summary, then its verdict, its header facts and the tests' footer;
    the most recent (the first) open."""
    parts = []
    for i, exp in enumerate(e for e in exps if e.id in frames):
        df, cfg, group = frames[exp.id], exp.config, exp.group
        rates = "learning rates tuned" if cfg.tune_lr is not None else "default learning rates (not tuned)"
        members = sorted(group.members, key=lambda m: m != group.best)  # the best first, as the budgets say it
        best = (f"top group: {', '.join(members)}" if len(members) > 1 else f"best: {group.best}" if group.best
                else "no top group (the verdict says why)")
        facts = "".join(f"<li>{inline(line.removeprefix('- '))}</li>" for line in header(exp.records).splitlines())
        parts.append(
            f'<details class="exp" id="exp-{escape(exp.id)}" data-exp="{i}"{" open" if i == 0 else ""}>'
            f"<summary><strong>{escape(exp.id)}</strong> · {escape(cfg.budget)} per run · {len(df)} rows · "
            f"{rates} · {escape(best)}</summary>"
            f'<p class="verdict"><strong>Verdict:</strong> {escape(df.attrs.get("verdict", ""))}</p>'
            f'<ul class="facts">{facts}</ul><p class="note">{escape(group.footer)}</p>'
            f'<p><button type="button" data-show="{i}">Show this experiment below</button></p></details>')
    waiting = [e for e in exps if e.id not in frames]
    parts += [f'<p class="note">Experiment {escape(e.id)}: {len(e.trials)} learning-rate search trial(s), no '
              f"reported run yet: the same command resumes.</p>" for e in waiting]
    return "\n".join(parts)


def _columns(exps: list[Experiment], cols: dict[str, dict[str, Column]]) -> list[tuple[str, str]]:
    """The table's columns (key, header) over every experiment: the markdown's, in its order, each once."""
    metrics = dict.fromkeys(n for e in exps if e.id in cols for n in cols[e.id])
    better = {n: c.better for by in cols.values() for n, c in by.items()}
    return ([("experiment", "experiment"), ("budget", "budget"), ("method", "method"),
             ("trainable params", "trainable params"), ("trainable %", "trainable %"), ("tuned lr", "tuned lr")]
            + [(n, f"{n} {better[n]}") for n in metrics]
            + [(n, n) for n in SERVING_TEXT]
            + [(TO_TARGET, f"{TO_TARGET} ↓"), ("search cost", "search cost"), (VS_MAJORITY, "vs majority class"),
               ("status", "status")])


def _cells(exp: Experiment, row: pd.Series, cols: dict[str, Column], bold: bool) -> dict[str, tuple[str, object]]:
    """Each cell's text (as the markdown says it) and the value it sorts by."""
    label, kind = row["method"], row.get("kind")
    cells: dict[str, tuple[str, object]] = {
        "experiment": (exp.id, exp.id), "budget": (exp.config.budget, exp.budget.amount),
        "method": (label + (" (baseline)" if kind == "baseline" else ""), label),
        "trainable params": (tables._fmt(row.get("trainable params"), "{:,.0f}"), row.get("trainable params")),
        "trainable %": (tables._fmt(row.get("trainable %"), "{:.3g}"), row.get("trainable %")),
        "status": (row["status"], row["status"])}
    if "search trials" in row and not pd.isna(row.get("search trials")):
        lr, cost = tables._search_cells(row)
        cells["tuned lr"], cells["search cost"] = (lr, row.get("lr")), (cost, row.get("search seconds"))
    for name, col in cols.items():
        text = tables._cell(row, name, col)
        cells[name] = (f"**{text}**" if bold and name == RANK_BY and row["top group"] else text,
                       row.get(f"{name} center"))
    for name in SERVING_TEXT:
        value = row.get(name)
        cells[name] = (tables._fmt(value, "{}" if name == "mergeable" else "{:.0f}"), value)
    if TO_TARGET in row and kind == "method":
        reach = tables._reach_cell(row, REACH_FMT.get(exp.unit, "{:,.0f}"))
        cells[TO_TARGET] = (reach + (f" {exp.unit}" if reach.startswith("(") else ""), row.get(TO_TARGET))
    majority = exp.group.reference.name if exp.group.reference else "always predicting the majority class"
    said = tables._vs_cell(row, majority)
    cells[VS_MAJORITY] = (said, said)
    return cells


def comparison_table(exps: list[Experiment], frames: dict[str, pd.DataFrame], cols: dict[str, dict[str, Column]]
                     ) -> str:
    """Every row of every experiment; a header is a button that sorts by its column. A row's data attributes are
    what the filters read; Enter or a click on a row opens its runs."""
    shown = [e for e in exps if e.id in frames]
    columns = _columns(shown, cols)
    head = "".join(f'<th scope="col" aria-sort="none"><button type="button" data-col="{i}">{escape(title)}'
                   f"</button></th>" for i, (_, title) in enumerate(columns))
    body = []
    for i, exp in enumerate(shown):
        df = frames[exp.id]
        methods = df[df["kind"] == "method"] if "kind" in df else df
        bold = bool(methods["top group"].any()) and not methods["top group"].all()  # as the markdown's bold
        for _, row in df.iterrows():
            r = exp.rows[row["method"]]
            statuses = sorted({x.status.value for x in r.runs})
            cells = _cells(exp, row, cols[exp.id], bold)
            marks = (' <span class="tag top" title="in the top group by test accuracy (the tests under the '
                     'experiment)">top group</span>' if bold and row["top group"] else "")
            marks += "".join(f' <span class="tag bad">{escape(s)}</span>' for s in statuses if s != "ok")
            tds = []
            for key, _ in columns:
                text, value = cells.get(key, ("–", None))
                sort = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else value
                html = inline(text) if text.startswith("**") else escape(text)
                th = key == "method"
                tag = "th" if th else "td"
                tds.append(f'<{tag}{" scope=row" if th else ""} data-v="{escape(str(sort))}"'
                           f'{f" title={_attr(text)}" if key == "status" else ""}>{html}'
                           f'{f"<span class=marks>{marks}</span>" if th and marks else ""}</{tag}>')
            classes = " ".join(c for c in ("baseline" if r.kind == "baseline" else "",
                                            "not-ok" if statuses != ["ok"] else "") if c)
            body.append(f'<tr tabindex="0" data-exp="{i}" data-label="{escape(row["method"])}" '
                        f'data-budget="{escape(exp.config.budget)}" data-status="{" ".join(statuses)}"'
                        f'{f" class={_attr(classes)}" if classes else ""}>{"".join(tds)}</tr>')
    return (f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def _attr(text: str) -> str:
    return f'"{escape(text)}"'
