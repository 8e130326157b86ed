"""What a comparison prints when it ends: each experiment's verdict, a table of its key columns that fits a terminal,
and where the full tables and plots are. The files keep every column (runners.analysis.tables); `python -m
runners.report` prints them whole."""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from tabulate import tabulate

if TYPE_CHECKING:
    import pandas as pd

WIDTH = 120  # columns: a wide terminal's, and what a pasted log keeps unwrapped
METHOD_WIDTH = 32  # a long spec is cut here; the files show it whole
TOP = "*"  # marks the top group (bold in the markdown)


def ending(rendered: dict[str, str], views: dict[str, pd.DataFrame], folder: Path, eids: list[str],
           several_budgets: bool = False) -> str:
    """What a comparison prints at its end: a view of each of its experiments (`rendered` and `views`, from
    runners.analysis.tables.write_tables), its budgets side by side where it had several, and where the files are."""
    shown = [eid for eid in dict.fromkeys(eids) if eid in views]
    parts = [view(views[eid], eid) for eid in shown]
    parts += [across_budgets(text) for key, text in rendered.items()
              if several_budgets and key.startswith("budgets-") and any(eid in text for eid in eids)]
    return "".join(f"\n{part}\n" for part in parts) + files(folder, shown, several_budgets)


def view(df: pd.DataFrame, eid: str, width: int = WIDTH) -> str:
    """An experiment's verdict and compact table, from its summary frame (runners.analysis.tables.write_tables'
    `frames`)."""
    verdict = df.attrs.get("verdict", "")
    lines = [f"Experiment {eid}" + (f" (budget {df['budget'].iloc[0]})" if "budget" in df else "")]
    if verdict:
        lines += textwrap.wrap(f"Verdict: {verdict}", width)
    lines.append(table(df, width))
    methods = df[df["kind"] == "method"] if "kind" in df else df
    if methods["top group"].any() and not methods["top group"].all():
        lines.append(f"{TOP} top group by test accuracy: the best and every row not significantly worse than it")
    return "\n".join(lines)


def table(df: pd.DataFrame, width: int = WIDTH) -> str:
    """Method, test accuracy with its interval, peak memory and training time, then what else fits in `width`: the
    tuned rate and any failed seed first."""
    methods = df[df["kind"] == "method"] if "kind" in df else df
    mark = methods["top group"].any() and not methods["top group"].all()  # all tied: nothing stands out
    columns = {"method": [_method(row) for _, row in df.iterrows()],
               "test acc [95% CI]": [_accuracy(row) + (f" {TOP}" if mark and row["top group"] else "")
                                     for _, row in df.iterrows()]}
    optional = [("peak mem (MiB)", "{:,.0f}"), ("train time (s)", "{:.1f}"), ("tuned lr", None), ("status", None),
                ("trainable %", "{:.3g}"), ("macro-F1", "{:.4f}"), ("latency b1 (ms)", "{:.1f}"),
                ("samples/s", "{:.1f}")]
    for name, fmt in optional:
        cells = _cells(df, name, fmt)
        if cells is None:
            continue
        wider = tabulate(list(zip(*columns.values(), cells)), headers=[*columns, name], disable_numparse=True)
        if max(map(len, wider.splitlines())) <= width:
            columns[name] = cells
    return tabulate(list(zip(*columns.values())), headers=list(columns), disable_numparse=True)


def across_budgets(section: str, width: int = WIDTH) -> str:
    """The markdown section that sets one comparison's budgets side by side (runners.analysis.budgets), for the
    terminal: its title, sentence and table, the top groups marked as in `view`; the table only where it fits
    `width`."""
    lines = section.splitlines()
    title = lines[0].removeprefix("## ")
    sentence = next((line for line in lines[1:] if line and not line.startswith(("|", "-", "!"))), "")
    rows = [line.replace("**", "") if "**" not in line else _starred(line) for line in lines if line.startswith("|")]
    out = [title, *textwrap.wrap(sentence, width)]
    if rows and max(map(len, rows)) <= width:
        out += rows + [f"{TOP} that budget's top group"] * any("**" in line for line in lines if line.startswith("|"))
    return "\n".join(out)


def _starred(row: str) -> str:
    """`| lora | **0.69 [0.68, 0.70]** |` as `| lora | 0.69 [0.68, 0.70] * |`."""
    return re.sub(r"\*\*(.+?)\*\*", rf"\1 {TOP}", row)


def files(folder: Path, eids: list[str], budgets: bool = False, width: int = WIDTH) -> str:
    """Where the full tables, this command's experiments' plots and the folder's page are."""
    plots = sorted(p.name for eid in eids for p in (folder / "plots").glob(f"{eid}-*.png"))
    lines = [f"Full tables: {folder}/comparison.md, comparison.csv" + (" (with the budgets side by side)"
                                                                       if budgets else "")]
    if plots:
        lines += textwrap.wrap(f"Plots in {folder}/plots/: {', '.join(plots)}", width, subsequent_indent="  ",
                               break_on_hyphens=False)
    if (folder / "index.html").exists():
        lines += textwrap.wrap(f"Page: {folder}/index.html (in a browser: the tables, plots and each run's details)",
                               width, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(lines)


def _method(row) -> str:
    name = str(row["method"])
    name = name if len(name) <= METHOD_WIDTH else name[:METHOD_WIDTH - 1] + "…"
    return name + (" (baseline)" if row.get("kind") == "baseline" else "")


def _accuracy(row) -> str:
    mean, lo, hi = row.get("test acc"), row.get("test acc ci_lo"), row.get("test acc ci_hi")
    if _missing(mean):
        return "–"
    return f"{mean:.4f}" + ("" if _missing(lo) else f" [{lo:.3f}, {hi:.3f}]")


def _cells(df: pd.DataFrame, name: str, fmt: str | None) -> list[str] | None:
    """A column's cells (a positive quantity's geometric mean, as the markdown centres it), or None where no row
    has a value."""
    if name == "tuned lr":
        if "search trials" not in df or df["search trials"].isna().all():
            return None
        return ["none" if _missing(row.get("lr")) else f"{row['lr']:.3g}" + (" ⚠" if row.get("lr edge") else "")
                for _, row in df.iterrows()]
    if name == "status":
        if (df["status"] == "ok").all():
            return None
        return [_status(str(s)) for s in df["status"]]
    if name not in df or df[name].isna().all():
        return None
    key = f"{name} center" if f"{name} center" in df else name
    return ["–" if _missing(v) else fmt.format(v) for v in df[key]]


def _status(status: str) -> str:
    """`seed 0: oom: CUDA out of...; seed 1: failed: ...` as `seed 0 oom, seed 1 failed`: the files say why."""
    found = re.findall(r"(?:^|; )seed (\d+): ([a-z_-]+)", status)
    return ", ".join(f"seed {seed} {what}" for seed, what in found) or status[:30]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
