"""Comparison tables, derived from run records alone: markdown (tabulate) and csv (pandas).

Each cell is a mean over seeds with its 95% interval (runners.analysis.stats); the top group by test accuracy is
bold, decided by paired tests with Holm's correction (runners.analysis.verdict), and the tests, correction and level
are named under it.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from runners.analysis.budgets import across_budgets
from runners.analysis.headers import header, mixed_resources
from runners.analysis.plots import UNIT_KEYS, write_plots
from runners.analysis.ranking import UNDETERMINED, TopGroup
from runners.analysis.selection import choose, search_frame, search_note
from runners.analysis.stats import LOG_CI, LOGIT_CI, mean_ci, reach_interval, reach_summary
from runners.analysis.verdict import accuracy_group, sentences
from runners.core.files import write_text_atomic
from runners.measure.scores import AUC_NOTE, ECE_NOTE
from runners.settings.budget import Budget
from runners.store.records import load_records, row_label
from runners.store.schema import Record


@dataclass(frozen=True)
class Column:
    """A table column: how to read a run's value, which way is better (↑/↓), how to print it, and whether it is a
    positive, skewed quantity (time, memory, throughput) whose interval is taken on the log scale."""

    get: Callable[[Record], float | None]
    better: str
    fmt: str
    positive: bool = False
    share: bool = False  # a number in [0, 1] (accuracy, F1, AUC, ECE): its interval is taken on the logit scale


def _at(path: tuple[str, ...]) -> Callable[[Record], float | None]:
    def get(record: Record):
        for key in path:
            record = getattr(record, key, None)
        return record
    return get


STATIC = {
    "test acc": Column(_at(("metrics", "accuracy")), "↑", "{:.4f}", share=True),
    "macro-F1": Column(_at(("metrics", "macro_f1")), "↑", "{:.4f}", share=True),
    "weighted-F1": Column(_at(("metrics", "weighted_f1")), "↑", "{:.4f}", share=True),
    "AUC": Column(_at(("metrics", "auc_macro")), "↑", "{:.4f}", share=True),
    "ECE": Column(_at(("metrics", "ece")), "↓", "{:.4f}", share=True),
    "peak mem (MiB)": Column(_at(("measurements", "peak_memory_mib")), "↓", "{:,.0f}", positive=True),
    "train time (s)": Column(_at(("measurements", "train_seconds")), "↓", "{:.1f}", positive=True),
    "samples/s": Column(_at(("measurements", "samples_per_second")), "↑", "{:.1f}", positive=True),
    # What the classifier costs to keep and to serve (runners.job.stages.serve), and to train (device time, money)
    "artifact (KiB)": Column(lambda r: r.serving.artifact_bytes / 1024 if r.serving else None, "↓", "{:,.1f}",
                             positive=True),
    "latency b1 (ms)": Column(_at(("serving", "latency_ms")), "↓", "{:.1f}", positive=True),
    "throughput (texts/s)": Column(_at(("serving", "throughput_per_second")), "↑", "{:,.0f}", positive=True),
    "device-hours": Column(_at(("cost", "device_hours")), "↓", "{:.2g}", positive=True),
    "cost (USD)": Column(_at(("cost", "money")), "↓", "{:.2g}", positive=True),
}
# Shown where some record has them (older records do not; serving and cost columns only where the stage ran)
OPTIONAL = ("weighted-F1", "AUC", "ECE", "artifact (KiB)", "latency b1 (ms)", "throughput (texts/s)",
            "device-hours", "cost (USD)")
SERVING_TEXT = ("mergeable", "extra tokens")  # text cells from the first ok seed's serving part
RANK_BY = "test acc"
VS_MAJORITY = "beats majority"
TO_TARGET = "budget to target"


def _curve_value(record: Record, fraction: float, key: str, later: float | None = None):
    """The metric at the first evaluation at or past `fraction` of the budget; None when that evaluation is also
    past the `later` checkpoint (a budget of few steps evaluates several checkpoints at one step: it belongs to
    the last of them, and the earlier ones were not reached on their own)."""
    point = next((p for p in record.curve if p.fraction >= fraction - 1e-6), None)
    if point is None or (later is not None and point.fraction >= later - 1e-6):
        return None
    return getattr(point, key, None)


def _reach(record: Record, target: float, unit_key: str) -> tuple[float, float] | None:
    """The interval (lo, hi] of the budget (in `unit_key`) in which the run first reached `target`."""
    return reach_interval([(getattr(p, unit_key), p.val_accuracy) for p in record.curve], target)


def target_accuracy(records: list[Record], fraction: float = 0.95) -> float | None:
    """`fraction` of the best method's mean final validation accuracy."""
    finals: dict[str, list[float]] = {}
    for r in records:
        if r.ok and r.curve:  # a baseline has no curve: it is a reference, not a candidate
            finals.setdefault(row_label(r), []).append(r.curve[-1].val_accuracy)
    return fraction * max(statistics.fmean(v) for v in finals.values()) if finals else None


def columns(records: list[Record]) -> dict[str, Column]:
    """The static columns (the optional metrics where some record has them), then one per checkpoint."""
    cfg = records[-1].config
    key = "test_accuracy" if cfg.test_each_checkpoint else "val_accuracy"
    cols = {n: c for n, c in STATIC.items() if n not in OPTIONAL or any(c.get(r) is not None for r in records)}
    marks = sorted(set(cfg.checkpoints) | {1.0})
    for f, later in zip(marks[:-1], marks[1:]):  # the last checkpoint is the end: its test accuracy is shown
        cols[f"{'test' if 'test' in key else 'val'} acc @{_share(f)}"] = Column(
            lambda r, f=f, later=later: _curve_value(r, f, key, later), "↑", "{:.3f}", share=True)
    return cols


def _share(f: float) -> str:
    frac = Fraction(f).limit_denominator(64)
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator > 1 else str(frac.numerator)


def summarize(records: list[Record], target: float | None = None, group: TopGroup | None = None,
              trials: list[Record] = ()) -> tuple[pd.DataFrame, dict[str, Column]]:
    """One row per method spec: parameters; mean, sd, 95% interval and each seed's value of every column; the
    budget to reach `target` as an interval; whether the row is in the top group by test accuracy; and, where its
    rate was searched (`trials`, the experiment's search trials), the chosen rate, edge flag and search cost."""
    cols = columns(records)
    group = group or accuracy_group(records)
    cfg = records[-1].config
    spent = UNIT_KEYS[Budget.parse(cfg.budget).unit]  # an epochs budget is counted in samples
    rows = []
    for label in dict.fromkeys(row_label(r) for r in records):
        runs = [r for r in records if row_label(r) == label]
        ok = [r for r in runs if r.ok]
        row = {"method": label, "kind": runs[0].method.kind, "seeds": ";".join(str(r.seed) for r in ok),
               "status": "; ".join(f"seed {r.seed}: {r.status.value}: {r.error}"
                                   for r in runs if not r.ok) or "ok"}  # a row all failed says why
        if ok and ok[0].measurements.trainable_params is not None:  # a baseline trains no network
            m = ok[0].measurements
            row["trainable params"] = m.trainable_params
            row["trainable %"] = 100 * m.trainable_params / m.total_params
            row["micro-batch"] = m.micro_batch
        for name, col in cols.items():
            values = [v for v in (col.get(r) for r in ok) if v is not None]
            s = mean_ci(values, positive=col.positive, share=col.share)
            row.update({name: s.mean, f"{name} center": s.center, f"{name} sd": s.sd, f"{name} ci_lo": s.lo,
                        f"{name} ci_hi": s.hi, f"{name} values": ";".join(f"{v:.6g}" for v in values)})
        if ok and ok[0].serving is not None:
            serving = ok[0].serving
            diff = f" (Δ {serving.merge_max_abs_diff:.1g})" if serving.merge_max_abs_diff is not None else ""
            row.update({"mergeable": serving.mergeable + diff, "extra tokens": serving.extra_tokens})
        if target is not None and row["kind"] == "method":
            reach = reach_summary([_reach(r, target, spent) for r in ok])
            row.update({TO_TARGET: reach.hi, f"{TO_TARGET} lo": reach.lo, f"{TO_TARGET} reached": reach.reached,
                        f"{TO_TARGET} runs": reach.runs})
        if runs[0].config.tune_lr is not None and runs[0].method.kind == "method":
            choice = choose(label, trials, runs[0].config.select_on)
            row.update({"lr": choice.lr, "lr edge": choice.edge or "", "lr outside range": choice.outside,
                        "lr range": "" if choice.range is None else f"{choice.range[0]:g}..{choice.range[1]:g}",
                        "lr range source": choice.range_source or "",
                        "lr tied": ";".join(f"{x:g}" for x in choice.tied), "lr rule": "highest score (before the "
                        "tie rule)" if choice.earlier_rule else "one standard error", "search trials": choice.trials,
                        "search seconds": choice.seconds, "search flops": choice.flops,
                        "search failures": "; ".join(choice.failures)})
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
    lr += "†" if str(row.get("lr rule", "")).startswith("highest") else ""
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


def experiments(records: list[Record]) -> list[list[Record]]:
    """Records grouped by experiment (everything but method and seed), the most recent group first."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.experiment_id, []).append(r)
    return sorted(groups.values(), key=lambda g: max(r.timestamp or "" for r in g), reverse=True)


def render(records: list[Record], target: float | None, trials: list[Record] = ()) -> tuple[str, pd.DataFrame]:
    """One experiment's markdown section (header, verdict, table and the notes on how to read it) from its
    reported runs, with the learning-rate search's `trials` where its rates were searched."""
    target = target if target is not None else target_accuracy(records)
    group = accuracy_group(records)  # once: the table's bold and the verdict's sentences come from the same test
    df, cols = summarize(records, target, group, trials)
    cfg = records[-1].config
    unit = UNIT_KEYS[Budget.parse(cfg.budget).unit]
    verdict = " ".join(sentences(records, group))
    df.attrs["verdict"] = verdict  # for a caller's own view of the frame (runners.analysis.terminal)
    notes = [f"- **Cells:** mean ± sd [{LOGIT_CI}] over seeds; time, memory, samples/s, serving and cost: geometric "
             f"mean [{LOG_CI}]; one value where there is one seed",
             f"- {group.footer}" if group.best or group.reference else
             "- Top group: none (fewer than two fine-tuning rows ended ok: nothing to test)"]
    if any(n in cols for n in OPTIONAL):
        notes.append(f"- **Scores from probabilities:** {AUC_NOTE}; {ECE_NOTE}")
    if target is not None:
        notes.append(f"- **Checkpoints:** accuracy at that share of the budget (– where the budget's steps were too "
                     f"few to evaluate it apart from a later checkpoint); *{TO_TARGET}* is the interval of "
                     f"{unit} (last checkpoint below, first at or above) in which validation accuracy first "
                     f"reached {target:.3f} (95% of the best final one unless `--target-accuracy` is given), over "
                     f"the seeds that reached it")
    notes += serving_notes(records)
    resources = mixed_resources(records)
    if resources:
        notes.append(f"- **{resources}**")
    if cfg.tune_lr is not None:
        notes.append(f"- **Tuned lr:** {search_note(cfg)}; ⚠ marks a rate at the low or high end of those tried "
                     f"(the best may lie beyond), one outside the range searched, and a range that is the default "
                     f"(the method declares none)" + ("; rates marked † were chosen by the rule before the tie rule "
                     "(the highest mean score, ties to the lower rate), as their trials were recorded before it"
                     if (df.get("lr rule") == "highest score (before the tie rule)").any() else "") +
                     ". *Search cost*: trials × this budget, with the seconds (training, "
                     "evaluation, compilation) and training FLOPs they measured")
    fmt = {"flops": "{:.3g}", "seconds": "{:.1f}"}.get(unit, "{:,.0f}")
    majority = group.reference.name if group.reference else "always predicting the majority class"
    text = (f"{header(records)}\n\n**Verdict:** {verdict}\n\n{to_markdown(df, cols, cfg.batch_size, fmt, majority)}\n\n"
            + "\n".join(notes) + "\n")
    return text, df


def serving_notes(records: list[Record]) -> list[str]:
    """How the serve stage's columns were measured, on which devices; and what the whole comparison cost."""
    ok = [r for r in records if r.ok]
    notes = []
    served = [r.serving for r in ok if r.serving is not None]
    if served:
        devices = ", ".join(dict.fromkeys(f"{s.device_name} ({s.compute_dtype})" for s in served))
        s = served[0]
        notes.append(f"- **Serving** (after the test, the serve stage), on {devices}: *artifact* is what is kept "
                     f"(a whole model, the trained tensors of a frozen base, or a peft adapter), its size on disk; "
                     f"*mergeable*: the merged model's logits on the first test texts stay within tolerance of the "
                     f"unmerged ones (Δ the largest difference; n/a: nothing to merge); latency: one text per "
                     f"request, median of {s.latency_requests} after warm-up; throughput: batches of "
                     f"{s.throughput_batch}, median of {s.throughput_repeats}; both of the form deployed (merged "
                     f"where mergeable); *extra tokens*: positions each request gains (virtual tokens)")
    costs = [r.cost for r in ok if r.cost is not None]
    if costs:
        hours = sum(c.device_hours for c in costs)
        priced = [c for c in costs if c.money is not None]
        sources = "; ".join(dict.fromkeys(c.price_source for c in priced))
        money = (f", {sum(c.money for c in priced):.3g} USD at {sources}"
                 + ("" if len(priced) == len(costs) else f" ({len(priced)} of {len(costs)} runs priced)")
                 if priced else "; no price per device-hour known for this device (--price-per-hour)")
        notes.append(f"- **Training cost:** device-hours are the training, compilation and evaluation seconds on one "
                     f"device; this comparison's {len(costs)} runs: {hours:.3g} device-hours{money}. Prices are "
                     f"estimates (runners.measure.prices)")
    return notes


def at_chosen_rates(records: list[Record], trials: list[Record]) -> list[Record]:
    """A tuned experiment's reported runs at the rate its search chooses now: a run made at a rate an earlier,
    unfinished search chose (a trial that failed ran again on resume and won) is superseded, not averaged in."""
    chosen: dict[str, float | None] = {}
    kept = []
    for r in records:
        if r.config.tune_lr is None or r.method.kind != "method":
            kept.append(r)
            continue
        label = row_label(r)
        if label not in chosen:
            chosen[label] = choose(label, trials, r.config.select_on).lr
        if r.config.lr == chosen[label]:
            kept.append(r)
    return kept


def write_tables(results: Path, dataset: str, target: float | None = None,
                 views: dict[str, pd.DataFrame] | None = None) -> dict[str, str]:
    """Regenerate `comparison.md`, `comparison.csv` and the plots for a dataset; return each experiment's markdown.
    `views`, when given, gains each experiment's summary frame (its comparison.csv rows; `attrs["verdict"]`)."""
    groups = experiments(load_records(results, dataset))
    out = Path(results) / dataset
    rendered, frames, sections = {}, [], []
    trial_frames = []
    for everything in groups:
        eid = everything[0].experiment_id
        g = [r for r in everything if not r.config.search]
        trials = [r for r in everything if r.config.search]
        if trials:
            trial_frames.append(search_frame(eid, trials))
        if not g:  # a search that has not reached its reported runs yet (interrupted, or still running)
            sections.append(f"## Experiment {eid}\n\n{len(trials)} learning-rate search trial(s), no reported run "
                            f"yet: the same command resumes.\n")
            continue
        g = at_chosen_rates(g, trials)
        rendered[eid], df = render(g, target, trials)
        cfg = g[-1].config
        df.insert(0, "experiment", eid)
        for key in ("budget", "batch_size", "max_length", "model"):
            df[key] = getattr(cfg, key)
        if TO_TARGET in df:
            target_used = target if target is not None else target_accuracy(g)
            df["budget unit"] = UNIT_KEYS[Budget.parse(cfg.budget).unit]
            df["target val acc"] = target_used
        frames.append(df)
        if views is not None:
            views[eid] = df
        plots = write_plots(g, out / "plots", prefix=f"{eid}-", trials=trials)
        figures = "".join(f"![{p.stem.removeprefix(eid + '-')}](plots/{p.name})\n" for p in plots)
        sections.append(f"## Experiment {eid}\n\n{rendered[eid]}" + (f"\n{figures}" if figures else ""))
    title = f"# Comparison on {dataset}\n\nGenerated by `python -m runners.report` from the run records in " \
            f"`runs/`; one section per experiment, the most recent first, with its plots from `plots/`.\n"
    for fid, text in across_budgets(groups, out / "plots").items():
        rendered[f"budgets-{fid}"] = text
        sections.append(text)
    write_text_atomic(out / "comparison.md", "\n".join([title, *sections]))
    write_text_atomic(out / "comparison.csv", pd.concat(frames, ignore_index=True).to_csv(index=False)
                      if frames else "")
    if trial_frames:
        write_text_atomic(out / "search.csv", pd.concat(trial_frames, ignore_index=True).to_csv(index=False))
    return rendered
