"""The lines above each comparison table: what its numbers came from (model, data, classes, budget, device, command)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from runners.store.records import row_label
from runners.store.schema import Record


def _fmt(value, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


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
        *_architecture(records),
        f"- **Data:** {data['dataset']} from `{data['source']}`: train {rows['train']:,}, validation "
        f"{rows['validation']:,}, test {rows['test']:,} rows; max_length {cfg.max_length}",
        f"- **Classes:** {_classes(data)}",
        f"- **Budget:** {cfg.budget} per run, batch {cfg.batch_size}; **seeds:** "
        f"{', '.join(map(str, seeds))}; **device:** {', '.join(devices) or '–'}",
        f"- **Learning rates:** {_rates(cfg)}",
        f"- **Loop:** {_loop(records)}",
        f"- **Majority-class baseline** (test accuracy of always predicting train's most common label): "
        f"{_fmt(baseline, '{:.4f}')}",
        f"- **Peak memory** is {_memory_kind(records)}",
        _commands(records),
    ]
    return "\n".join(lines)


def _architecture(records: list[Record]) -> list[str]:
    """The model as the runs loaded it and the modules each method resolved on it (records since schema 6)."""
    loaded = next((r.loaded for r in reversed(records) if r.loaded), None)
    if loaded is None:
        return []
    by_modules: dict[str, list[str]] = {}
    for r in records:
        if r.method.modules is not None:
            what = "; ".join(f"{k} {', '.join(v)}" for k, v in r.method.modules.items()) or "none named"
            labels = by_modules.setdefault(what, [])
            if row_label(r) not in labels:
                labels.append(row_label(r))
    return [f"- **Architecture:** {loaded['model_type']}, a {loaded['kind']} ({loaded['blocks']} blocks; it scores "
            f"{loaded['scores']} with {'+'.join(loaded['head'])}; attention {loaded['attention']}, activation "
            f"{loaded['activation']}, pad token id {loaded['pad_token_id']})",
            "- **Modules** (named within a block): " + "; ".join(f"{', '.join(labels)}: {what}"
                                                                  for what, labels in by_modules.items())]


def _commands(records: list[Record]) -> str:
    """Every command whose runs are in the table, in the order they first wrote one (a resumed or widened
    comparison, or two commands sharing a results folder, each ran some of its runs)."""
    commands = list(dict.fromkeys(r.command for r in sorted(records, key=lambda r: r.timestamp or "")))
    if len(commands) == 1:
        return f"- **Command:** `{commands[0]}`"
    return f"- **Commands** ({len(commands)}, whose runs are in this table): " + "; ".join(f"`{c}`" for c in commands)


def _rates(cfg) -> str:
    if cfg.tune_lr is not None:
        return (f"tuned per method (`--tune-lr {cfg.tune_lr}`, search seeds {', '.join(map(str, cfg.search_seeds))}, "
                f"selected on validation {cfg.select_on}; the `tuned lr` column)")
    if cfg.lr is not None:
        return f"{cfg.lr:g} for every method (`--lr`)"
    return "each method's default (`--list`), not tuned: a method's rank may reflect its default rate"


def _loop(records: list[Record]) -> str:
    """The loop's revision and what the runs computed in (a revision-1 record predates recording it)."""
    loop = records[-1].config.loop
    dtypes = sorted({r.device.get("compute_dtype") for r in records if r.device and r.device.get("compute_dtype")})
    if loop < 2:
        return ("revision 1 (fp32 on the CPU, bf16 autocast on CUDA; GPT-2's gelu_new): before bf16 on CPUs and the "
                "fused GELU")
    if not dtypes:  # no run got far enough to record its device: say what became of them instead
        ended = ", ".join(f"{n} {status}" for status, n in
                          Counter(r.status.value for r in records).most_common())
        return f"revision {loop}; no run of this table got as far as recording what it computed in ({ended})"
    return f"revision {loop}; computed in {' / '.join(dtypes)} (weights and optimizer state fp32)"


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


def mixed_resources(records: Iterable[Record]) -> str | None:
    """One line when the runs of one table did not each have the same resources (the device; on the CPU, the threads
    each run had), or the seeds of one row did not compute in the same precision: their timings do not compare. None
    when they did, or nothing says otherwise. Rows that differ in precision by design (`[no bf16]`) are not a mix."""
    records = list(records)
    fields = {"device": lambda d: d.get("name") or d.get("type"), "threads": lambda d: d.get("threads")}
    seen: dict[str, set] = {k: set() for k in fields}
    dtypes: dict[str, set] = {}
    for record in records:
        if record.device:
            for key, read in fields.items():
                seen[key].add(read(record.device))
            dtypes.setdefault(row_label(record), set()).add(record.device.get("compute_dtype"))
    parts = [f"{key} {', '.join(sorted('unrecorded' if v is None else str(v) for v in values))}"
             for key, values in seen.items() if len(values) > 1]
    parts += [f"{row}: compute dtype {', '.join(sorted('unrecorded' if v is None else v for v in values))}"
              for row, values in dtypes.items() if len(values) > 1]
    if not parts:
        return None
    return f"note: these runs did not have the same resources ({'; '.join(parts)}): their timings do not compare"
