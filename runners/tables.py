"""Comparison tables, derived from run records alone: markdown (tabulate) and csv (pandas)."""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pandas as pd
from scipy.stats import t as student_t
from tabulate import tabulate

from runners.budget import Budget
from runners.plots import UNIT_KEYS, write_plots
from runners.record import Record
from runners.records import load_records, row_label, write_text_atomic


@dataclass(frozen=True)
class Column:
    """A table column: how to read a run's value, which way is better (↑/↓), and how to print it."""

    get: Callable[[dict], float | None]
    better: str
    fmt: str


def _at(path: tuple[str, ...]) -> Callable[[Record], float | None]:
    def get(record: Record):
        for key in path:
            record = getattr(record, key, None)
        return record
    return get


STATIC = {
    "test acc": Column(_at(("metrics", "accuracy")), "↑", "{:.4f}"),
    "macro-F1": Column(_at(("metrics", "macro_f1")), "↑", "{:.4f}"),
    "peak mem (MiB)": Column(_at(("measurements", "peak_memory_mib")), "↓", "{:,.0f}"),
    "train time (s)": Column(_at(("measurements", "train_seconds")), "↓", "{:.1f}"),
    "samples/s": Column(_at(("measurements", "samples_per_second")), "↑", "{:.1f}"),
}
RANK_BY = "test acc"
TO_TARGET = "budget to target"


def _curve_value(record: Record, fraction: float, key: str, later: float | None = None):
    """The metric at the first evaluation at or past `fraction` of the budget; None when that evaluation is also
    past the `later` checkpoint (a budget of few steps evaluates several checkpoints at one step: it belongs to
    the last of them, and the earlier ones were not reached on their own)."""
    point = next((p for p in record.curve if p.fraction >= fraction - 1e-6), None)
    if point is None or (later is not None and point.fraction >= later - 1e-6):
        return None
    return getattr(point, key, None)


def _reach(record: Record, target: float, unit_key: str):
    """Budget spent (in the budget's unit) at the first checkpoint whose validation accuracy reached `target`."""
    return next((getattr(p, unit_key) for p in record.curve if p.val_accuracy >= target), None)


def target_accuracy(records: list[Record], fraction: float = 0.95) -> float | None:
    """`fraction` of the best method's mean final validation accuracy."""
    finals: dict[str, list[float]] = {}
    for r in records:
        if r.ok:
            finals.setdefault(row_label(r), []).append(r.curve[-1].val_accuracy)
    return fraction * max(statistics.fmean(v) for v in finals.values()) if finals else None


def columns(records: list[Record], target: float | None) -> dict[str, Column]:
    """The static columns, then one per checkpoint (accuracy at that share of the budget), then the target."""
    cfg = records[-1].config
    key = "test_accuracy" if cfg.test_each_checkpoint else "val_accuracy"
    cols = dict(STATIC)
    marks = sorted(set(cfg.checkpoints) | {1.0})
    for f, later in zip(marks[:-1], marks[1:]):  # the last checkpoint is the end: its test accuracy is shown
        cols[f"{'test' if 'test' in key else 'val'} acc @{_share(f)}"] = Column(
            lambda r, f=f, later=later: _curve_value(r, f, key, later), "↑", "{:.3f}")
    if target is not None:
        spent = UNIT_KEYS[Budget.parse(cfg.budget).unit]  # an epochs budget is counted in samples
        fmt = {"flops": "{:.3g}", "seconds": "{:.1f}"}.get(spent, "{:,.0f}")
        # one name whatever the target and unit, so that experiments concatenate; both are columns of their own
        cols[TO_TARGET] = Column(lambda r: _reach(r, target, spent), "↓", fmt)
    return cols


def _share(f: float) -> str:
    frac = Fraction(f).limit_denominator(64)
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator > 1 else str(frac.numerator)


def stats(values: list[float]) -> dict:
    """Mean, sample sd and the 95% confidence interval of the mean (t-distribution); sd and CI need two values."""
    n = len(values)
    if n == 0:
        return {"mean": None, "sd": None, "lo": None, "hi": None, "n": 0}
    mean = statistics.fmean(values)
    if n == 1:
        return {"mean": mean, "sd": None, "lo": None, "hi": None, "n": 1}
    sd = statistics.stdev(values)
    half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half, "n": n}


def summarize(records: list[Record], target: float | None = None) -> tuple[pd.DataFrame, dict[str, Column]]:
    """One row per method spec: parameters, and mean, sd, CI and each seed's value of every column."""
    cols = columns(records, target)
    rows = []
    for label in dict.fromkeys(row_label(r) for r in records):
        runs = [r for r in records if row_label(r) == label]
        ok = [r for r in runs if r.ok]
        row = {"method": label, "seeds": ";".join(str(r.seed) for r in ok),
               "status": "; ".join(f"seed {r.seed}: {r.status.value}: {r.error}"
                                   for r in runs if not r.ok) or "ok"}  # a row all failed says why
        if ok:
            m = ok[0].measurements
            row["trainable params"] = m.trainable_params
            row["trainable %"] = 100 * m.trainable_params / m.total_params
            row["micro-batch"] = m.micro_batch
        for name, col in cols.items():
            values = [v for v in (col.get(r) for r in ok) if v is not None]
            s = stats(values)
            row.update({name: s["mean"], f"{name} sd": s["sd"], f"{name} ci_lo": s["lo"], f"{name} ci_hi": s["hi"],
                        f"{name} values": ";".join(f"{v:.6g}" for v in values)})
            if name == TO_TARGET:
                row[f"{name} reached"] = len(values)
        rows.append(row)
    df = pd.DataFrame(rows)
    ascending = cols[RANK_BY].better == "↓"
    df = df.sort_values(RANK_BY, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    return df, cols


def _winner(df: pd.DataFrame, name: str, better: str) -> int | None:
    """The row that wins a column by more than the uncertainty: its 95% CI clear of every other row's.
    With one seed there is no CI, so nothing is marked as a win."""
    valid = df[df[name].notna() & df[f"{name} ci_lo"].notna()]
    if len(valid) < 2:
        return None
    best = valid[name].idxmax() if better == "↑" else valid[name].idxmin()
    others = valid.drop(index=best)
    if better == "↑":
        clear = (valid.at[best, f"{name} ci_lo"] > others[f"{name} ci_hi"]).all()
    else:
        clear = (valid.at[best, f"{name} ci_hi"] < others[f"{name} ci_lo"]).all()
    return best if clear else None


def to_markdown(df: pd.DataFrame, cols: dict[str, Column], batch_size: int | None = None) -> str:
    micro = df["micro-batch"].dropna() if "micro-batch" in df else pd.Series(dtype=float)
    show_micro = batch_size is not None and (micro != batch_size).any()
    headers = ["method", "trainable params", "trainable %"] + [f"{n} {c.better}" for n, c in cols.items()]
    show_status = (df["status"] != "ok").any()
    winners = {n: _winner(df, n, c.better) for n, c in cols.items()}
    body = []
    for i, row in df.iterrows():
        cells = [row["method"], _fmt(row.get("trainable params"), "{:,.0f}"), _fmt(row.get("trainable %"), "{:.3g}")]
        for name, col in cols.items():
            text = _cell(row, name, col.fmt)
            cells.append(f"**{text}**" if winners[name] == i else text)
        extra = ([_fmt(row.get("micro-batch"), "{:.0f}")] if show_micro else []) + (
            [_status_cell(row["status"])] if show_status else [])
        body.append(cells + extra)
    headers += (["micro-batch"] if show_micro else []) + (["status"] if show_status else [])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _status_cell(status: str, width: int = 160) -> str:
    """The status column: each failed seed with its reason, cut to fit a table (the record holds the whole text)."""
    text = status if len(status) <= width else status[:width - 1] + "…"
    return text.replace("|", "\\|")  # a `|` in an error message would split the markdown row


def _cell(row: pd.Series, name: str, fmt: str) -> str:
    """`mean ± sd [lo, hi]`, or the mean alone for one seed; a target column says how many seeds reached it."""
    if f"{name} reached" in row and row["seeds"]:
        reached, runs = int(row[f"{name} reached"]), len(row["seeds"].split(";"))
        if reached == 0:
            return "not reached"
        if reached < runs:
            return f"{fmt.format(row[name])} ({reached}/{runs} seeds)"
    text = _fmt(row[name], fmt)
    if pd.notna(row[f"{name} sd"]):
        lo, hi = fmt.format(row[f"{name} ci_lo"]), fmt.format(row[f"{name} ci_hi"])
        text += f" ± {fmt.format(row[f'{name} sd'])} [{lo}, {hi}]"
    return text


def _fmt(value, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else fmt.format(value)


def header(records: list[Record]) -> str:
    """What the table's numbers came from: model, data, budget, seeds, device and the command."""
    last = records[-1]
    cfg, model, data = last.config, last.model, last.data
    arch = model.get("architecture", {})
    shape = ", ".join(f"{k} {v}" for k, v in arch.items() if k != "model_type")
    weights = ", ".join(f"{n} sha256 {h[:12]}" for n, h in model.get("weights_sha256", {}).items())
    devices = sorted({f"{r.device['type']} ({r.device['name']})" for r in records if r.device})
    seeds = sorted({r.seed for r in records})
    rows = data["rows"]
    baseline = next((r.metrics.majority_baseline for r in records if r.metrics), None)
    lines = [
        f"- **Model:** `{model['name']}` (a {arch.get('model_type', '?')}-architecture model: {shape}; {weights})",
        f"- **Data:** {data['dataset']} from `{data['source']}`: train {rows['train']:,}, validation "
        f"{rows['validation']:,}, test {rows['test']:,} rows; max_length {cfg.max_length}",
        f"- **Classes:** {_classes(data)}",
        f"- **Budget:** {cfg.budget} per run, batch {cfg.batch_size}; **seeds:** "
        f"{', '.join(map(str, seeds))}; **device:** {', '.join(devices) or '–'}",
        f"- **Majority-class baseline** (test accuracy of always predicting train's most common label): "
        f"{_fmt(baseline, '{:.4f}')}",
        f"- **Peak memory** is {_memory_kind(records)}",
        f"- **Command:** `{last.command}`",
    ]
    return "\n".join(lines)


def _classes(data: dict) -> str:
    """`3: 0 negative (train 7,781, test 1,001), ...`: the classes' ids, names and row counts."""
    names, counts = data.get("label_names") or [], data.get("class_counts") or {}
    parts = []
    for i, name in enumerate(names):
        shown = f"{i} {name}" if str(name) != str(i) else str(i)
        per_split = ", ".join(f"{split} {c[i]:,}" for split, c in counts.items() if i < len(c))
        parts.append(f"{shown} ({per_split})" if per_split else shown)
    return f"{len(names)}: {', '.join(parts)}" if names else "–"


def _memory_kind(records: list[Record]) -> str:
    kinds = {r.measurements.peak_memory_kind for r in records if r.measurements}
    names = {"cuda_max_allocated": "CUDA max allocated", "cpu_peak_rss": "the run process's peak RSS"}
    return " / ".join(names.get(k, k) for k in sorted(kinds)) or "–"


def experiments(records: list[Record]) -> list[list[Record]]:
    """Records grouped by experiment (everything but method and seed), the most recent group first."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.experiment_id, []).append(r)
    return sorted(groups.values(), key=lambda g: max(r.timestamp or "" for r in g), reverse=True)


def render(records: list[Record], target: float | None) -> tuple[str, pd.DataFrame]:
    """One experiment's markdown section (header and table) and its summary frame."""
    target = target if target is not None else target_accuracy(records)
    df, cols = summarize(records, target)
    cfg = records[-1].config
    notes = ["- **Cells:** mean ± sd [95% CI of the mean, t-distribution] over seeds where there are several; "
             "**bold** marks a win whose CI clears every other row's (ties stay plain)"]
    if target is not None:
        unit = Budget.parse(cfg.budget).unit
        notes.append(f"- **Checkpoints:** accuracy at that share of the budget (– where the budget's steps were too "
                     f"few to evaluate it apart from a later checkpoint); *{TO_TARGET}* is the {unit} spent at "
                     f"the first checkpoint reaching validation accuracy {target:.3f} "
                     f"(95% of the best final one unless `--target-accuracy` is given)")
    text = f"{header(records)}\n" + "\n".join(notes) + f"\n\n{to_markdown(df, cols, cfg.batch_size)}\n"
    return text, df


def write_tables(results: Path, dataset: str, target: float | None = None) -> dict[str, str]:
    """Regenerate `comparison.md`, `comparison.csv` and the plots for a dataset; return each experiment's markdown."""
    groups = experiments(load_records(results, dataset))
    out = Path(results) / dataset
    rendered, frames, sections = {}, [], []
    for g in groups:
        eid = g[0].experiment_id
        rendered[eid], df = render(g, target)
        cfg = g[-1].config
        df.insert(0, "experiment", eid)
        for key in ("budget", "batch_size", "max_length", "model"):
            df[key] = getattr(cfg, key)
        if TO_TARGET in df:
            target_used = target if target is not None else target_accuracy(g)
            df["budget unit"] = UNIT_KEYS[Budget.parse(cfg.budget).unit]
            df["target val acc"] = target_used
        frames.append(df)
        plots = write_plots(g, out / "plots", prefix=f"{eid}-")
        figures = "".join(f"![{p.stem.removeprefix(eid + '-')}](plots/{p.name})\n" for p in plots)
        sections.append(f"## Experiment {eid}\n\n{rendered[eid]}" + (f"\n{figures}" if figures else ""))
    title = f"# Comparison on {dataset}\n\nGenerated by `python -m runners.report` from the run records in " \
            f"`runs/`; one section per experiment, the most recent first, with its plots from `plots/`.\n"
    write_text_atomic(out / "comparison.md", "\n".join([title, *sections]))
    write_text_atomic(out / "comparison.csv", pd.concat(frames, ignore_index=True).to_csv(index=False))
    return rendered
