"""The estimate's measurements, in this process (runners.planning.estimate): the model's loading, full fine-tuning steps
on
typical training batches, the FLOPs probe every run makes, and evaluation's speed per row."""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from methods import default_optimizer
from runners.data.batches import Collator, length_grouped_batches, load_tokenized
from runners.job.loop import autocast_for, sync

WARMUP_STEPS = 2  # untimed: allocation and kernel choice (the first takes the longest batch, as training does)
MIN_STEPS, MAX_STEPS = 5, 15  # timed steps; a median over several batches, not one batch's time
PROBE_S = 10.0  # past MIN_STEPS, stop timing after this many seconds: on a slow device the probe stays short
EVAL_BATCHES = 2  # timed evaluation forwards, after an untimed one


@dataclass(frozen=True)
class Probe:
    step_s: float  # median seconds of a timed optimizer step
    steps: int  # how many steps were timed
    fastest_s: float  # the fastest and slowest timed step: how steady the device was
    slowest_s: float
    step_flops: float  # FLOPs of the timed steps' batches, their mean
    load_s: float  # loading the model onto the device
    flops_s: float  # the FLOPs probe (runners.measure.flops.measure), which every run also makes
    row_s: float  # evaluating one row, in batches of the evaluation batch size


def probe(model_path: str, tokens: Path, num_labels: int, pad_id: int, batch_size: int, eval_batch_size: int,
          device: torch.device, threads: int | None = None) -> Probe:
    """Measure the plain model (a full fine-tune: every method's upper bound per step) on the command's data.
    `threads`: what each run gets (a pool's share of the cores), so that a step is timed at the runs' speed."""
    from runners.measure.flops import measure

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        data = load_tokenized(tokens)
        start = time.perf_counter()
        model = _load(model_path, num_labels, pad_id, device)
        load_s = time.perf_counter() - start
        times, batches = _steps(model, data["train"], pad_id, batch_size, device)
        collate = Collator(data["train"], pad_id, "right", device)
        start = time.perf_counter()
        flop_model = measure(model, device)
        flops_s = time.perf_counter() - start
        row_s = _row_seconds(model, data.get("validation") or data["train"], pad_id, eval_batch_size, device)
        del model
    finally:
        torch.set_num_threads(before)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    step_flops = statistics.fmean(flop_model.step(len(b), collate.width(b)) for b in batches)
    return Probe(statistics.median(times), len(times), min(times), max(times), step_flops, load_s, flops_s, row_s)


def _load(model_path: str, num_labels: int, pad_id: int, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the new head's "newly initialised" report is expected here
    hf_logging.disable_progress_bar()
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=num_labels, pad_token_id=pad_id, dtype=torch.float32).to(device)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _steps(model, train, pad_id: int, batch_size: int, device: torch.device) -> tuple[list[float], list[np.ndarray]]:
    """Optimizer steps on the batches training would draw (length-grouped); the timed ones' seconds and batches."""
    collate = Collator(train, pad_id, "right", device)
    rng = np.random.default_rng(0)
    batches = length_grouped_batches(train.lengths, min(batch_size, len(train)), rng)
    optimizer = default_optimizer(model.parameters(), lr=1e-5)  # every method's unless it brings its own
    model.train()
    times, timed, spent = [], [], 0.0
    for i in range(WARMUP_STEPS + MAX_STEPS):
        idx = batches[i % len(batches)]
        start = time.perf_counter()
        with autocast_for(device):
            model(**collate(idx)).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
            timed.append(idx)
            spent += times[-1]
            if len(times) >= MIN_STEPS and spent >= PROBE_S:
                break
    del optimizer
    return times, timed


@torch.no_grad()
def _row_seconds(model, split, pad_id: int, batch_size: int, device: torch.device) -> float:
    """Seconds per evaluated row: forwards of batches from the middle of the split sorted by length (evaluation
    sorts it so), the first untimed."""
    model.eval()
    order = np.argsort(split.lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    middle = len(batches) // 2
    chosen = [batches[(middle + k) % len(batches)] for k in range(EVAL_BATCHES + 1)]
    collate = Collator(split, pad_id, "right", device)
    seconds = rows = 0
    for k, idx in enumerate(chosen):
        start = time.perf_counter()
        with autocast_for(device):
            model(**collate(idx))
        sync(device)
        if k:
            seconds += time.perf_counter() - start
            rows += len(idx)
    return seconds / rows
