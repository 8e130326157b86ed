"""Before training: how long the whole command will take, from the budget itself or a short measured probe."""
from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import torch

from methods import default_optimizer
from runners.batches import Collator, load_tokenized
from runners.budget import Budget
from runners.train import autocast_for, sync

PROBE_STEPS = 3  # the first step warms up (allocations, kernel choice) and is not timed


def describe(runs: int, budget: Budget, model_path: str, tokens: Path, num_labels: int, pad_id: int,
             batch_size: int, device: torch.device) -> str:
    """One line: runs × the training time each, which a time budget states and any other is probed for."""
    if budget.unit == "seconds":
        per, how = budget.amount, "the time budget"
    else:
        train = load_tokenized(tokens)["train"]
        step, step_flops = probe(model_path, train, num_labels, pad_id, batch_size, device)
        per = step * _steps(budget, train.lengths, batch_size, step_flops)
        how = (f"a measured full fine-tuning step of {step:.2f} s at batch {batch_size}; methods that train "
               f"fewer weights are faster")
    return (f"estimate: {runs} run(s) × {_duration(per)} of training ≈ {_duration(runs * per)} in all, plus "
            f"loading and evaluation (from {how})")


def probe(model_path: str, train, num_labels: int, pad_id: int, batch_size: int,
          device: torch.device) -> tuple[float, float]:
    """(seconds, FLOPs) of one optimizer step of the plain model on a typical batch of the training data."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from runners.flops import measure

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the new head's "newly initialised" report is expected here
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=num_labels, pad_token_id=pad_id, dtype=torch.float32).to(device)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
    collate = Collator(train, pad_id, "right", device)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(train), size=min(batch_size, len(train)), replace=False)
    optimizer = default_optimizer(model.parameters(), lr=1e-5)  # every method's unless it brings its own
    model.train()
    times = []
    for _ in range(PROBE_STEPS):
        start = time.perf_counter()
        with autocast_for(device):
            model(**collate(idx)).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - start)
    step_flops = measure(model, device).step(len(idx), collate.width(idx))
    del model, optimizer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return float(np.median(times[1:])), step_flops


def _steps(budget: Budget, lengths: np.ndarray, batch_size: int, step_flops: float) -> float:
    known = budget.total_steps(len(lengths), batch_size)
    if known is not None:
        return known
    if budget.unit == "tokens":
        return budget.amount / (float(lengths.mean()) * batch_size)
    return budget.amount / step_flops  # FLOPs: as full fine-tuning counts them; lighter methods take more steps


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
