"""Comparison tables, derived from run records alone: markdown (tabulate) and csv (pandas)."""
from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from runners.records import load_records, write_text_atomic

# column -> (record path, direction, format). The direction drives the header marks and the row order.
COLUMNS = {
    "test acc": (("metrics", "accuracy"), "↑", "{:.4f}"),
    "macro-F1": (("metrics", "macro_f1"), "↑", "{:.4f}"),
    "peak mem (MiB)": (("measurements", "peak_memory_mib"), "↓", "{:,.0f}"),
    "train time (s)": (("measurements", "train_seconds"), "↓", "{:.1f}"),
    "samples/s": (("measurements", "samples_per_second"), "↑", "{:.1f}"),
}
RANK_BY = "test acc"


def _get(record: dict, path: tuple[str, ...]):
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def summarize(records: list[dict]) -> pd.DataFrame:
    """One row per method spec: trainable params, and mean, sd and each seed's value of every column."""
    rows = []
    for label in dict.fromkeys(r["config"]["method"] for r in records):
        runs = [r for r in records if r["config"]["method"] == label]
        ok = [r for r in runs if r["status"] == "ok"]
        row = {"method": label, "seeds": ";".join(str(r["config"]["seed"]) for r in ok),
               "status": "ok" if len(ok) == len(runs) else "; ".join(
                   f"seed {r['config']['seed']}: {r['status']}" for r in runs if r["status"] != "ok")}
        if ok:
            m = ok[0]["measurements"]
            row["trainable params"] = m["trainable_params"]
            row["trainable %"] = 100 * m["trainable_params"] / m["total_params"]
        for col, (path, _, _) in COLUMNS.items():
            values = [_get(r, path) for r in ok]
            values = [v for v in values if v is not None]
            row[col] = statistics.fmean(values) if values else None
            row[f"{col} sd"] = statistics.stdev(values) if len(values) > 1 else None
            row[f"{col} values"] = ";".join(f"{v:.6g}" for v in values)
        rows.append(row)
    df = pd.DataFrame(rows)
    ascending = COLUMNS[RANK_BY][1] == "↓"
    return df.sort_values(RANK_BY, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)


def to_markdown(df: pd.DataFrame) -> str:
    headers = ["method", "trainable params", "trainable %"] + [f"{c} {d}" for c, (_, d, _) in COLUMNS.items()]
    show_status = (df["status"] != "ok").any()
    body = []
    for _, row in df.iterrows():
        cells = [row["method"], _fmt(row.get("trainable params"), "{:,.0f}"), _fmt(row.get("trainable %"), "{:.3g}")]
        for col, (_, _, fmt) in COLUMNS.items():
            mean, sd = row[col], row[f"{col} sd"]
            cells.append(_fmt(mean, fmt) + (f" ± {fmt.format(sd)}" if pd.notna(sd) else ""))
        body.append(cells + ([row["status"]] if show_status else []))
    return tabulate(body, headers=headers + (["status"] if show_status else []), tablefmt="github",
                    disable_numparse=True)


def _fmt(value, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else fmt.format(value)


def header(records: list[dict]) -> str:
    """What the table's numbers came from: model, data, budget, seeds, device and the command."""
    last = records[-1]
    cfg, model, data = last["config"], last["model"], last["data"]
    arch = model.get("architecture", {})
    shape = ", ".join(f"{k} {v}" for k, v in arch.items() if k != "model_type")
    weights = ", ".join(f"{n} sha256 {h[:12]}" for n, h in model.get("weights_sha256", {}).items())
    devices = sorted({f"{r['device']['type']} ({r['device']['name']})" for r in records if "device" in r})
    seeds = sorted({r["config"]["seed"] for r in records})
    rows = data["rows"]
    baseline = next((r["metrics"]["majority_baseline"] for r in records if "metrics" in r), None)
    lines = [
        f"- **Model:** `{model['name']}` ({arch.get('model_type', '?')}: {shape}; {weights})",
        f"- **Data:** {data['dataset']} from `{data['source']}`: train {rows['train']:,}, validation "
        f"{rows['validation']:,}, test {rows['test']:,} rows; max_length {cfg['max_length']}",
        f"- **Budget:** {cfg['budget']} per run, batch {cfg['batch_size']}; **seeds:** "
        f"{', '.join(map(str, seeds))}; **device:** {', '.join(devices) or '–'}",
        f"- **Majority-class baseline** (test accuracy of always predicting train's most common label): "
        f"{_fmt(baseline, '{:.4f}')}",
        f"- **Peak memory** is {_memory_kind(records)}; mean ± sd over seeds where there are several",
        f"- **Command:** `{last.get('command', '?')}`",
    ]
    return "\n".join(lines)


def _memory_kind(records: list[dict]) -> str:
    kinds = {r.get("measurements", {}).get("peak_memory_kind") for r in records} - {None}
    names = {"cuda_max_allocated": "CUDA max allocated", "cpu_peak_rss": "the run process's peak RSS"}
    return " / ".join(names.get(k, k) for k in sorted(kinds)) or "–"


def experiments(records: list[dict]) -> list[list[dict]]:
    """Records grouped by experiment (everything but method and seed), the most recent group first."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["experiment_id"], []).append(r)
    return sorted(groups.values(), key=lambda g: max(r.get("timestamp", "") for r in g), reverse=True)


def render_experiment(records: list[dict]) -> str:
    return f"{header(records)}\n\n{to_markdown(summarize(records))}\n"


def write_tables(results: Path, dataset: str) -> dict[str, str]:
    """Regenerate `comparison.md` and `comparison.csv` for a dataset; return each experiment's markdown."""
    groups = experiments(load_records(results, dataset))
    rendered = {g[0]["experiment_id"]: render_experiment(g) for g in groups}
    title = f"# Comparison on {dataset}\n\nGenerated by `python -m runners.report` from the run records in " \
            f"`runs/`; one section per experiment, the most recent first.\n"
    sections = [f"## Experiment {eid}\n\n{text}" for eid, text in rendered.items()]
    out = Path(results) / dataset
    write_text_atomic(out / "comparison.md", "\n".join([title, *sections]))
    frames = []
    for g in groups:
        df = summarize(g)
        cfg = g[-1]["config"]
        df.insert(0, "experiment", g[0]["experiment_id"])
        for key in ("budget", "batch_size", "max_length", "model"):
            df[key] = cfg[key]
        frames.append(df)
    write_text_atomic(out / "comparison.csv", pd.concat(frames, ignore_index=True).to_csv(index=False))
    return rendered
