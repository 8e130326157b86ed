"""The serve stage: what a trained classifier costs to train (device-hours, money), to keep and to serve.

After the test, in the run's own process: the method saves what a user would keep (`Method.save`), its size is
measured, and the files are deleted unless the command kept them (`--save-models DIR`: DIR/<run_id>/, with
`predict.json`, what `runners.predict` needs to load it back). Where the method merges, the merged model's logits
on a fixed subset of test texts are held to the unmerged ones within `MERGE_TOLERANCE`. Then the form a user would
deploy (merged where that held, else as trained) is timed: one text per request, and a larger batch. The runner
names no method: all it knows comes from the method's hooks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from methods.artifacts import folder_bytes
from runners.data.batches import Collator
from runners.job.loop import autocast_for, sync
from runners.job.stages import Context, stage
from runners.measure import environment as env
from runners.measure.prices import price_per_hour

# The largest |merged - unmerged| logit a merge may leave, by what the forward computes in, as a share of the
# largest |logit| (at least 1). fp32: rounding of the summed weights; bf16: its 8-bit mantissa (~4e-3 per value)
# over the body's layers.
MERGE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}
MERGE_ROWS = 32  # test texts whose logits are compared, the first ones of the test split
# One text each; each is sent once untimed first (a new input shape costs the first call kernel selection), then
# timed; the median is reported.
LATENCY_REQUESTS = 8
THROUGHPUT_BATCH = 32  # texts per forward for throughput (fewer when the test split is smaller)
THROUGHPUT_REPEATS = 3  # timed forwards, after one untimed; the median is reported
MANIFEST = "predict.json"  # beside a kept artifact: how to load it back (runners.predict)


@stage("serve")
def serve_stage(ctx: Context) -> dict:
    """Training's cost from the measured seconds; then, unless the job says `serving.skip`, the artifact, the merge
    check and the serving timings."""
    settings = ctx.job.serving
    parts = {"cost": training_cost(ctx, settings.price_per_hour)}
    if not settings.skip:
        parts["serving"] = measure(ctx, settings.save_models)
    return parts


def training_cost(ctx: Context, given: float | None) -> dict:
    """Device-hours of this run's training, compilation and evaluation (one device), and their price where known."""
    m = ctx.parts["measurements"]
    hours = (m["train_seconds"] + m.get("compile_seconds", 0.0) + m["eval_seconds"]) / 3600
    price, source = price_per_hour(env.device_info(ctx.device), given)
    return {"device_hours": hours, "price_per_hour": price, "price_source": source,
            "money": hours * price if price is not None else None}


def measure(ctx: Context, save_models: str | None) -> dict:
    start = time.perf_counter()
    method, device, mctx = ctx.method, ctx.device, ctx.model_context
    bf16 = ctx.cfg.bf16(ctx.device)
    dtype = env.precision(device, bf16).dtype
    model = method.deployed(ctx.model).eval()
    folder = Path(save_models) / ctx.job.run_id if save_models else Path(tempfile.mkdtemp(prefix="peft-lab-"))
    try:
        if folder.exists() and save_models:  # a rerun's: the new run's files, not a mix
            shutil.rmtree(folder)
        artifact = method.save(ctx.model, folder)
        size = folder_bytes(folder)
        test = ctx.data["test"]
        collate = Collator(test, mctx.pad_token_id, method.padding_side, device)
        rows = np.arange(min(MERGE_ROWS, len(test)))
        merge = {"mergeable": "n/a", "deployed": "as trained"}
        if method.mergeable is False:
            merge["mergeable"] = "no"
        elif method.mergeable:
            merge, model = _merge(method, model, collate, rows, device, bf16, dtype, folder, mctx)
        timings = _time(model, collate, len(test), device, bf16)
        if save_models:
            _write_manifest(ctx, folder, artifact)
            _follow_umask(folder)
    finally:
        if not save_models:
            shutil.rmtree(folder, ignore_errors=True)
    return {"artifact": artifact, "artifact_bytes": size, "saved_to": str(folder) if save_models else None,
            **merge, "extra_tokens": method.extra_tokens(), "compute_dtype": str(dtype).removeprefix("torch."),
            **timings, "device_name": env.device_info(device, bf16)["name"],
            "seconds": time.perf_counter() - start}


def _merge(method, model, collate, rows, device, bf16, dtype, folder, mctx) -> tuple[dict, torch.nn.Module]:
    """Merge, and hold the merged logits to the unmerged ones; the merged model where that held, else the model as
    trained (loaded back from its saved files: a merge changes the model in place)."""
    before = _logits(model, collate, rows, device, bf16)
    tolerance = MERGE_TOLERANCE.get(dtype, 5e-2) * max(1.0, float(before.abs().max()))
    try:
        merged = method.merge(model)
    except Exception as e:  # a merge peft refuses is a result: the method does not merge here
        note = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        return ({"mergeable": "no", "deployed": "as trained", "merge_note": note},
                method.load_saved(folder, mctx))
    diff = float((_logits(merged, collate, rows, device, bf16) - before).abs().max())
    result = {"merge_max_abs_diff": diff, "merge_tolerance": tolerance}
    if diff <= tolerance:
        return {**result, "mergeable": "yes", "deployed": "merged"}, merged.eval()
    return ({**result, "mergeable": "no", "deployed": "as trained",
             "merge_note": f"merged logits differ by {diff:.3g} > {tolerance:.3g}"}, method.load_saved(folder, mctx))


@torch.inference_mode()
def _logits(model, collate, rows, device, bf16) -> torch.Tensor:
    batch = collate(rows)
    batch.pop("labels")
    with autocast_for(device, bf16):
        return model(**batch).logits.float()


@torch.inference_mode()
def _time(model, collate, n: int, device: torch.device, bf16: bool) -> dict:
    """Latency of one text per request and throughput at a batch, medians of wall times synchronised on CUDA; the
    peak memory allocated meanwhile on CUDA."""
    model.eval()
    batches = {"one": [collate(np.array([i % n])) for i in range(LATENCY_REQUESTS)],
               "many": collate(np.arange(min(THROUGHPUT_BATCH, n)))}
    for batch in [*batches["one"], batches["many"]]:
        batch.pop("labels")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def seconds(batch) -> float:
        sync(device)
        t = time.perf_counter()
        with autocast_for(device, bf16):
            model(**batch)
        sync(device)
        return time.perf_counter() - t

    for batch in batches["one"]:  # warm-up, at each request's shape
        seconds(batch)
    latency = [seconds(b) for b in batches["one"]]
    seconds(batches["many"])  # warm-up at the larger shape
    many = [seconds(batches["many"]) for _ in range(THROUGHPUT_REPEATS)]
    rows = len(batches["many"]["input_ids"])
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"latency_ms": 1000 * statistics.median(latency), "latency_requests": LATENCY_REQUESTS,
            "throughput_per_second": rows / statistics.median(many), "throughput_batch": rows,
            "throughput_repeats": THROUGHPUT_REPEATS, "peak_memory_mib": peak}


def _write_manifest(ctx: Context, folder: Path, artifact: str) -> None:
    """What `runners.predict` needs beside the files: the method spec, the base model, how texts were tokenized and
    padded, the label names, and the arguments the model was loaded with."""
    mctx = ctx.model_context
    load = {k: v for k, v in dataclasses.asdict(mctx).items() if k not in ("path", "device")}
    manifest = {
        "run_id": ctx.job.run_id, "method": ctx.cfg.method, "artifact": artifact,
        "base_model": ctx.job.model.path, "model_identity": ctx.job.model.name,
        "label_names": ctx.job.data["label_names"], "max_length": ctx.cfg.max_length,
        "padding_side": ctx.method.padding_side, "load": load, "plugins": list(ctx.job.plugins),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _follow_umask(folder: Path) -> None:
    """Give every kept file and folder the mode the umask gives a new one. Some writers (safetensors' save_file,
    under peft's and transformers' save_pretrained too) make their files 0600: another user who can see a kept
    model could read all of it but its weights."""
    mask = os.umask(0o077)  # reading the umask means setting it: private meanwhile, should another thread create
    os.umask(mask)  # a file in that instant
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
