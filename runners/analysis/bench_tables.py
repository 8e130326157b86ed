"""The bench's tables: a row per shape and method from our run's measurements and its Trainer twin's (speed, MFU and
HFU against the measured peak, peak memory, ours/twin), and the markdown each measure is printed in (`never` for a
break-even that never comes, `–` where a row has no value)."""
from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from runners.measure.peaks import SHORT, backward_kind, model_flops_per_token

FORMATS = {"samples/s": "{:.3g}", "twin samples/s": "{:.3g}", "real tokens/s": "{:,.0f}", "MFU %": "{:.1f}",
           "HFU %": "{:.1f}", "twin MFU %": "{:.1f}", "MFU % datasheet": "{:.1f}", "peak MiB": "{:,.0f}",
           "twin peak MiB": "{:,.0f}", "batch": "{:.0f}", "compile s": "{:.1f}", "break-even samples": "{:,.0f}"}


def twin_row(shape: str, label: str, ours: dict, twin: dict, config, peaks: dict,
             datasheet: dict | None = None) -> dict:
    """One row: our run (its record's measurements, with `compute_dtype`) beside its Trainer twin's numbers
    (runners.job.twin), each with "error" where it failed. MFU and HFU against the measured peak of the precision
    the row ran in; `× twin` our samples/s over the twin's (above 1: our loop is faster); `peak × twin` our peak
    memory over the twin's (below 1: ours needs less)."""
    row = {"shape": shape, "method": label}
    if "error" in ours:
        return {**row, "error": f"ours: {ours['error']}"}
    dtype = ours["compute_dtype"]
    kind = backward_kind(ours, config)
    per_token = model_flops_per_token(config, ours["tokens"] / ours["samples"], kind)
    peak = peaks[dtype]["peak"]
    row.update({"precision": SHORT[dtype], "trains all": kind == "all", "batch": ours["batch_size"],
                "samples/s": ours["samples_per_second"], "real tokens/s": ours["tokens_per_second"],
                "MFU %": 100 * per_token * ours["tokens_per_second"] / peak,
                "HFU %": 100 * ours["flops"] / ours["train_seconds"] / peak,
                **({"MFU % datasheet": 100 * per_token * ours["tokens_per_second"] / (datasheet[dtype] * 1e12)}
                   if datasheet else {}),
                "peak MiB": ours["peak_memory_mib"]})
    if "error" in twin:
        return {**row, "error": f"twin: {twin['error']}"}
    row.update({"twin samples/s": twin["samples_per_second"],
                "× twin": ours["samples_per_second"] / twin["samples_per_second"],
                "twin MFU %": 100 * per_token * twin["tokens_per_second"] / peak,
                "twin peak MiB": twin["peak_memory_mib"],
                "peak × twin": ours["peak_memory_mib"] / twin["peak_memory_mib"],
                "same batches": twin["same_batches"] and twin["tokens"] == ours["tokens"]})
    return row


def with_fp32_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Each bf16 row's samples/s over the same shape and method's fp32 row (`[no bf16]`), where both ran."""
    if "precision" not in df:
        return df
    fp32 = {(r.shape, r.method.removesuffix(" [no bf16]")): r["samples/s"] for _, r in df.iterrows()
            if r.get("precision") == "fp32" and pd.notna(r.get("samples/s"))}
    df["× own fp32"] = [r["samples/s"] / fp32[(r.shape, r.method)] if r.get("precision") == "bf16" and
                        (r.shape, r.method) in fp32 else None for _, r in df.iterrows()]
    return df


def markdown(df: pd.DataFrame) -> str:
    shown = df.astype(object)
    for col in shown:
        fmt = FORMATS.get(col, "{:.2f}" if col.startswith(("×", "peak ×")) else None)
        if fmt:
            shown[col] = [("never" if v == float("inf") else fmt.format(v)) if pd.notna(v) else "–" for v in df[col]]
    return tabulate(shown.fillna("–"), headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
