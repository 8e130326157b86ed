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
from runners.data.batches import Collator, TokenizedSplit, batch_stream
from runners.measure import environment as env
from runners.measure.flops import FlopModel
from runners.settings.budget import Budget, Spent
from runners.settings.config import RunConfig
from runners.settings.speedups import SPEEDUPS

LOG_EVERY = 20  # steps between reads of the loss: each read waits for the device, so not every step


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    spent: Spent = field(default_factory=Spent)
    eval_seconds: float = 0.0
    final_loss: float = float("nan")  # mean training loss over the last logging window
    curve: list[dict] = field(default_factory=list)  # metrics at each checkpoint, with the budget spent
    optimizer_state_bytes: int = 0
    compile_seconds: float = 0.0  # torch.compile's warm-up, kept out of `spent.seconds` unless the budget is time


def lr_factor(fraction: float, warmup: float) -> float:
    """Linear warmup over the first `warmup` share of the budget, then linear decay to zero at its end."""
    if fraction < warmup:
        return (fraction + 1e-9) / warmup
    return max(0.0, (1.0 - fraction) / (1.0 - warmup))


def autocast_for(device: torch.device, bf16: bool = True):
    """bf16 autocast where the device computes bf16 in hardware (CUDA, a CPU with AVX512-BF16 or AMX), plain fp32
    elsewhere or with the bf16 speed-up off; weights and optimizer state stay fp32 (measure.environment.precision)."""
    on = env.precision(device, bf16).autocast
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else nullcontext()


def train(model: nn.Module, method: Method, data: dict[str, TokenizedSplit], cfg: RunConfig, *, lr: float,
          pad_id: int, num_labels: int, device: torch.device, flops: FlopModel, micro_batch: int | None = None,
          quiet: bool = False) -> TrainResult:
    """Train until the budget is spent, evaluating at its checkpoints. `micro_batch` < batch size accumulates."""
    budget = Budget.parse(cfg.budget)
    train_split = data["train"]
    n_train, lengths = len(train_split), train_split.lengths
    micro = micro_batch or cfg.batch_size
    on = {name: cfg.speedup(name) for name in SPEEDUPS} | {"bf16": cfg.bf16(device)}
    log_every = LOG_EVERY if on["async_loss"] else 1
    collate = Collator(train_split, pad_id, method.padding_side, device, pin=on["pinned_memory"],
                       pad_to=None if on["dynamic_padding"] else cfg.max_length, with_ids=method.wants_example_ids)
    tested = cfg.test_each_checkpoint and not cfg.search  # a learning-rate search trial is never tested
    eval_splits = {"val": data["validation"], **({"test": data["test"]} if tested else {})}
    evaluators = {k: (s, Collator(s, pad_id, method.padding_side, device)) for k, s in eval_splits.items()}

    groups = method.param_groups(model)
    for g in groups:
        g["base_lr"] = lr * g.pop("lr_scale", 1.0)
    optimizer = method.make_optimizer(groups, lr=lr, fused=on["fused_adamw"])
    trainable = [p for g in groups for p in g["params"]]

    total_samples = budget.total_samples(n_train)
    checkpoints = sorted(set(cfg.checkpoints) | {1.0})
    res, spent = TrainResult(), Spent()
    res.spent = spent
    loss_sum, loss_steps = torch.zeros((), device=device), 0
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # first step with a NaN/inf loss
    total_steps = budget.total_steps(n_train, cfg.batch_size)
    # Budgets in steps, samples or epochs count steps; time, tokens and FLOPs count per-mille of the budget
    # (integers, so that the bar never overshoots its total).
    shape = {} if total_steps else {"bar_format": "{l_bar}{bar}| of budget [{elapsed}{postfix}]"}
    bar = tqdm(total=total_steps or 1000, desc=cfg.method, unit="step", disable=quiet, dynamic_ncols=True,
               leave=False, **shape)
    model.train()
    if cfg.compile:
        res.compile_seconds = compile_model(model, collate, lengths, micro, device, on["bf16"])
        if budget.needs_clock:  # a time budget pays for compiling: it is time not spent training
            spent.seconds = res.compile_seconds
    sync(device)
    clock = time.perf_counter()
    fraction = 0.0
    for idx in batch_stream(lengths, cfg.batch_size, cfg.seed, on["bucketing"]):
        if total_samples is not None:  # a sample budget is exact: the last batch is cut to fit
            idx = idx[: total_samples - spent.samples]
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * lr_factor(fraction, cfg.warmup)
        for start in range(0, len(idx), micro):  # gradient accumulation keeps the effective batch
            chunk = idx[start:start + micro]
            with autocast_for(device, on["bf16"]):
                loss = model(**collate(chunk)).loss * (len(chunk) / len(idx))
            loss.backward()
            loss_sum += loss.detach()
            spent.flops += flops.step(len(chunk), collate.width(chunk))  # from the shape: no sync
        # note the step a non-finite loss appears, on the device, so that finding it needs no sync
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss_sum), spent.steps + 1, first_bad)
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
        optimizer.step()
        spent.steps += 1
        spent.samples += len(idx)
        spent.tokens += int(lengths[idx].sum())  # real tokens, known on the host
        if budget.needs_clock:  # only a time budget pays for a sync every step
            sync(device)
        now = time.perf_counter()
        spent.seconds, clock = spent.seconds + now - clock, now
        fraction = budget.fraction(spent, n_train)
        method.on_step(model, Progress(spent.steps, spent.samples, spent.tokens, fraction))
        optimizer.zero_grad(set_to_none=True)  # free gradient memory before the next forward
        loss_steps += 1
        bar.update(1 if total_steps else int(1000 * min(fraction, 1.0)) - bar.n)
        if spent.steps % log_every == 0 or fraction >= 1.0:
            res.final_loss = loss_sum.item() / loss_steps  # the loop's only sync outside time budgets
            loss_sum.zero_()
            loss_steps = 0
            if not math.isfinite(res.final_loss):
                raise Diverged(f"training loss became non-finite at step {int(first_bad)} "
                               f"(noticed at step {spent.steps})")
            bar.set_postfix(loss=f"{res.final_loss:.4f}", samples_s=f"{spent.samples / spent.seconds:.1f}")
        if fraction >= checkpoints[0] - 1e-9:
            sync(device)
            spent.seconds += time.perf_counter() - clock
            while checkpoints and fraction >= checkpoints[0] - 1e-9:
                checkpoints.pop(0)
            res.curve.append(_checkpoint(model, evaluators, cfg, res, fraction, device, num_labels, on["bf16"]))
            model.train()
            clock = time.perf_counter()
        if fraction >= 1.0:
            break
    bar.close()
    res.optimizer_state_bytes = sum(t.numel() * t.element_size() for s in optimizer.state.values()
                                    for t in s.values() if torch.is_tensor(t))
    return res


def _checkpoint(model, evaluators, cfg, res, fraction, device, num_labels, bf16) -> dict:
    start = time.perf_counter()
    point = {"fraction": round(fraction, 6), **res.spent.to_dict(), "train_loss": res.final_loss}
    for name, (split, collate) in evaluators.items():
        metrics = evaluate(model, split, collate, cfg.eval_batch_size, device, num_labels, bf16)
        point.update({f"{name}_{k}": v for k, v in metrics.items()})
    res.eval_seconds += time.perf_counter() - start
    return point


@torch.inference_mode()
def evaluate(model: nn.Module, split: TokenizedSplit, collate: Collator, batch_size: int,
             device: torch.device, num_labels: int, bf16: bool = True, detailed: bool = False) -> dict:
    """Accuracy, macro-F1 and mean cross-entropy over a split; results stay on the device until the end.

    `detailed`: also every metric of `runners.measure.scores.classification_metrics` (weighted F1, AUC, ECE) and, under
    "proba", the class probabilities (n × K, in the split's row order) from which a record stores its predictions.
    """
    model.eval()
    order = np.argsort(split.lengths, kind="stable")  # similar lengths together: least padding
    preds, probs, loss_sum = [], [], torch.zeros((), device=device)
    for start in range(0, len(order), batch_size):
        batch = collate(order[start:start + batch_size])
        labels = batch.pop("labels")
        with autocast_for(device, bf16):
            logits = model(**batch).logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum")
        preds.append(logits.argmax(-1))
        if detailed:
            probs.append(logits.softmax(-1))
    predicted = np.empty(len(order), dtype=np.int64)
    predicted[order] = torch.cat(preds).cpu().numpy()
    truth = split.labels.numpy()
    result = {"accuracy": float(accuracy_score(truth, predicted)),
              "macro_f1": float(f1_score(truth, predicted, average="macro", labels=list(range(num_labels)),
                                         zero_division=0)),
              "loss": loss_sum.item() / len(order)}
    if detailed:
        from runners.measure.scores import classification_metrics

        proba = np.empty((len(order), num_labels), dtype=np.float64)
        proba[order] = torch.cat(probs).double().cpu().numpy()
        scores = classification_metrics(truth, proba)
        result.update({k: scores[k] for k in ("weighted_f1", "auc_macro", "auc_weighted", "ece")}, proba=proba)
    return result


def compile_model(model: nn.Module, collate: Collator, lengths: np.ndarray, micro: int, device: torch.device,
                  bf16: bool) -> float:
    """`torch.compile` the model in place and warm it up; return the seconds that took.

    The warm-up runs forward and backward (no optimizer step) on the longest batch and on a shorter, smaller one,
    so that the graph compiled is the one with dynamic batch and sequence sizes that every later batch reuses.
    """
    model.compile()
    start = time.perf_counter()
    order = np.argsort(-lengths, kind="stable")
    for idx in (order[:micro], order[len(order) // 2:][:max(1, micro // 2)]):
        with autocast_for(device, bf16):
            model(**collate(idx)).loss.backward()
    model.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
