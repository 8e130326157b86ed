"""The one training routine every method shares, and evaluation. It calls only the method's hooks."""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from tqdm.auto import tqdm

from methods import Method, Progress
from runners.batches import Collator, TokenizedSplit, length_grouped_batches
from runners.budget import Budget
from runners.config import RunConfig

LOG_EVERY = 20  # steps between reads of the loss: each read waits for the device, so not every step


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    steps: int = 0
    samples: int = 0
    tokens: int = 0  # real tokens, padding excluded
    train_seconds: float = 0.0  # optimizer work only; evaluation time is excluded
    eval_seconds: float = 0.0
    final_loss: float = float("nan")  # mean training loss over the last logging window
    curve: list[dict] = field(default_factory=list)  # validation metrics at each checkpoint


def lr_factor(fraction: float, warmup: float) -> float:
    """Linear warmup over the first `warmup` share of the budget, then linear decay to zero at its end."""
    if fraction < warmup:
        return (fraction + 1e-9) / warmup
    return max(0.0, (1.0 - fraction) / (1.0 - warmup))


def autocast_for(device: torch.device):
    # bf16 autocast on CUDA (weights and optimizer state stay fp32); the CPU runs plain fp32.
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def train(model: nn.Module, method: Method, data: dict[str, TokenizedSplit], cfg: RunConfig, *, lr: float,
          pad_id: int, num_labels: int, device: torch.device, quiet: bool = False) -> TrainResult:
    budget = Budget.parse(cfg.budget)
    train_split = data["train"]
    n_train, lengths = len(train_split), train_split.lengths
    collate = Collator(train_split, pad_id, method.padding_side, device)
    val_collate = Collator(data["validation"], pad_id, method.padding_side, device)

    groups = method.param_groups(model)
    for g in groups:
        g["base_lr"] = lr * g.pop("lr_scale", 1.0)
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")
    trainable = [p for g in groups for p in g["params"]]

    rng = np.random.default_rng(cfg.seed)
    total_samples = budget.total_samples(n_train)
    checkpoints = sorted(set(cfg.checkpoints) | {1.0})
    res = TrainResult()
    loss_sum, loss_steps = torch.zeros((), device=device), 0
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # first step with a NaN/inf loss
    bar = tqdm(total=budget.total_steps(n_train, cfg.batch_size), desc=cfg.method, unit="step",
               disable=quiet, dynamic_ncols=True, leave=False)
    model.train()
    sync(device)
    clock = time.perf_counter()
    fraction = 0.0
    while fraction < 1.0:
        for idx in length_grouped_batches(lengths, cfg.batch_size, rng):
            if total_samples is not None:  # a sample budget is exact: the last batch is cut to fit
                idx = idx[: total_samples - res.samples]
            batch = collate(idx)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * lr_factor(fraction, cfg.warmup)
            with autocast_for(device):
                loss = model(**batch).loss
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            res.steps += 1
            res.samples += len(idx)
            res.tokens += int(lengths[idx].sum())  # real tokens, known on the host: no device sync
            fraction = budget.fraction(res.steps, res.samples, n_train)
            method.on_step(model, Progress(res.steps, res.samples, res.tokens, fraction))
            optimizer.zero_grad(set_to_none=True)  # free gradient memory before the next forward
            loss_sum += loss.detach()
            loss_steps += 1
            # note the step a non-finite loss appears, on the device, so that finding it needs no sync
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), res.steps, first_bad)
            bar.update()
            if res.steps % LOG_EVERY == 0 or fraction >= 1.0:
                res.final_loss = loss_sum.item() / loss_steps  # the only host sync in the loop
                loss_sum.zero_()
                loss_steps = 0
                if not math.isfinite(res.final_loss):
                    raise Diverged(f"training loss became non-finite at step {int(first_bad)} "
                                   f"(noticed at step {res.steps})")
                elapsed = res.train_seconds + time.perf_counter() - clock
                bar.set_postfix(loss=f"{res.final_loss:.4f}", samples_s=f"{res.samples / elapsed:.1f}")
            if fraction >= checkpoints[0] - 1e-9:
                sync(device)
                res.train_seconds += time.perf_counter() - clock
                while checkpoints and fraction >= checkpoints[0] - 1e-9:
                    checkpoints.pop(0)
                res.curve.append(_checkpoint(model, data["validation"], val_collate, cfg, res, fraction, device,
                                             num_labels))
                model.train()
                clock = time.perf_counter()
            if fraction >= 1.0:
                break
    bar.close()
    return res


def _checkpoint(model, split, collate, cfg, res, fraction, device, num_labels) -> dict:
    start = time.perf_counter()
    metrics = evaluate(model, split, collate, cfg.eval_batch_size, device, num_labels)
    res.eval_seconds += time.perf_counter() - start
    return {"fraction": round(fraction, 6), "steps": res.steps, "samples": res.samples, "tokens": res.tokens,
            "train_seconds": res.train_seconds, "train_loss": res.final_loss,
            **{f"val_{k}": v for k, v in metrics.items()}}


@torch.inference_mode()
def evaluate(model: nn.Module, split: TokenizedSplit, collate: Collator, batch_size: int,
             device: torch.device, num_labels: int) -> dict:
    """Accuracy, macro-F1 and mean cross-entropy over a split; predictions stay on the device until the end."""
    model.eval()
    order = np.argsort(split.lengths, kind="stable")  # similar lengths together: least padding
    preds, loss_sum = [], torch.zeros((), device=device)
    for start in range(0, len(order), batch_size):
        batch = collate(order[start:start + batch_size])
        labels = batch.pop("labels")
        with autocast_for(device):
            logits = model(**batch).logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum")
        preds.append(logits.argmax(-1))
    predicted = np.empty(len(order), dtype=np.int64)
    predicted[order] = torch.cat(preds).cpu().numpy()
    truth = split.labels.numpy()
    return {"accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", labels=list(range(num_labels)),
                                       zero_division=0)),
            "loss": loss_sum.item() / len(order)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
