"""A run's Trainer twin: `transformers.Trainer` training the very model our run trains, built by the same code
(`build_model`, the train stage's: the method's model, its head seeded by the run's seed), with the same batch size,
precision, examples in the same order, the method's own optimizer and parameter groups, its per-step hook, the same
warm-up and gradient clipping. Only the loop differs, so ours/twin measures the loop alone (both processes on glibc's
default allocator). The bench (`runners.bench`) runs one twin per row, each in a process of its own
(`measure_twin` starts `python -m runners.job.twin JOB.json`), so that its peak memory is its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from runners.core.files import PROJECT_ROOT
from runners.data.batches import TokenizedSplit, batch_stream
from runners.job.spec import Job
from runners.measure import environment as env
from runners.settings.budget import Budget


class _InOrder(torch.utils.data.Dataset):
    """The training examples in the order our loop draws them (item k: the k-th example it trains on)."""

    def __init__(self, split: TokenizedSplit, order: list[int]) -> None:
        self.split, self.order = split, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> dict:
        i = self.order[k]
        lo, hi = int(self.split.offsets[i]), int(self.split.offsets[i + 1])
        return {"input_ids": self.split.ids[lo:hi].tolist(), "labels": int(self.split.labels[i]), "example": i}


def training_order(split: TokenizedSplit, job: Job) -> tuple[list[int], bool]:
    """The examples our loop trains on, in its order, for the run's sample budget; and whether Trainer, which cuts
    that sequence into batches of the batch size, gets our batches exactly (only a short batch in the middle, at an
    epoch's end, would shift those after it)."""
    cfg = job.config
    total = Budget.parse(cfg.budget).total_samples(len(split))
    if total is None:
        raise ValueError(f"a Trainer twin needs a budget in samples, steps or epochs, not {cfg.budget}")
    order, sizes = [], []
    for idx in batch_stream(split.lengths, cfg.batch_size, cfg.seed, cfg.speedup("bucketing")):
        idx = idx[: total - len(order)]
        order += idx.tolist()
        sizes.append(len(idx))
        if len(order) >= total:
            return order, all(n == cfg.batch_size for n in sizes[:-1])
    raise AssertionError("unreachable: the stream is endless")


def run_twin(job: Job) -> dict:
    """In the twin's process: build the run's model as the train stage does and train it with `Trainer`; its
    numbers under the names of our records'."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.utils import logging as hf_logging

    from methods import Progress
    from runners.data.batches import load_tokenized
    from runners.data.models import load_tokenizer
    from runners.job.stages.train import build_model

    if threads := os.environ.get("PEFT_LAB_THREADS"):  # as the worker: a pool's share of the cores
        torch.set_num_threads(int(threads))
    hf_logging.set_verbosity_error()
    cfg = job.config
    device = env.resolve_device(cfg.device)
    env.reset_peak_memory(device)
    split = load_tokenized(job.tokens)["train"]
    method, mctx, model = build_model(job, device)
    high_water = {"loaded": env.peak_memory(device)["peak_mib"]}
    order, same_batches = training_order(split, job)
    groups = method.param_groups(model)
    for g in groups:  # the loop's groups: a group's lr_scale multiplies the rate (LoRA+'s B matrices)
        g["lr"] = method.params.lr * g.pop("lr_scale", 1.0)
    optimizer = method.make_optimizer(groups, lr=method.params.lr, fused=cfg.speedup("fused_adamw"))
    tokenizer = load_tokenizer(job.model.path)
    tokenizer.padding_side = method.padding_side
    pad = DataCollatorWithPadding(tokenizer, padding="longest" if cfg.speedup("dynamic_padding") else "max_length",
                                  max_length=None if cfg.speedup("dynamic_padding") else cfg.max_length)
    real_tokens, shapes = [], []

    def collate(features: list[dict]) -> dict:
        ids = [f.pop("example") for f in features]
        real_tokens.append(sum(len(f["input_ids"]) for f in features))
        batch = pad(features)
        shapes.append(tuple(batch["input_ids"].shape))  # (batch, padded width): the FLOPs it computes
        if method.wants_example_ids:
            batch["example_ids"] = torch.tensor(ids)
        return batch

    class OnStep(TrainerCallback):  # the method's per-step hook, after the optimizer step as in our loop
        def on_optimizer_step(self, args, state, control, **kwargs):
            done = min(len(order), (state.global_step + 1) * cfg.batch_size)
            method.on_step(model, Progress(state.global_step + 1, done, sum(real_tokens), done / len(order)))

    steps = -(-len(order) // cfg.batch_size)
    autocast = env.precision(device, cfg.bf16(device)).autocast
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg.batch_size, max_steps=steps,
            learning_rate=method.params.lr, lr_scheduler_type="linear", warmup_steps=cfg.warmup,
            max_grad_norm=cfg.max_grad_norm, bf16=autocast, train_sampling_strategy="sequential",
            save_strategy="no", eval_strategy="no", report_to=[], logging_steps=steps, disable_tqdm=True,
            use_cpu=device.type != "cuda", dataloader_num_workers=0, remove_unused_columns=False,
            dataloader_pin_memory=cfg.speedup("pinned_memory"), seed=cfg.seed)
        trainer = Trainer(model=model, args=args, train_dataset=_InOrder(split, order), data_collator=collate,
                          optimizers=(optimizer, None), callbacks=[OnStep()])
        metrics = trainer.train().metrics
    high_water["trained"] = env.peak_memory(device)["peak_mib"]
    seconds = metrics["train_runtime"]  # Trainer's own clock: its loop, as ours is timed by the loop's
    trainable, total = env.count_parameters(model, method.stored_values_per_element)
    samples, tokens = len(order), int(sum(real_tokens))
    return {"train_seconds": seconds, "samples": samples, "tokens": tokens, "steps": steps,
            "samples_per_second": samples / seconds, "tokens_per_second": tokens / seconds,
            "train_loss": metrics.get("train_loss"), "trainable_params": trainable, "total_params": total,
            "shapes": shapes, "same_batches": same_batches, "batch_size": cfg.batch_size,
            "peak_memory_mib": env.peak_memory(device)["peak_mib"], "high_water_mib": high_water,
            "compute_dtype": "bfloat16" if autocast else "float32"}


def measure_twin(job: Job) -> dict:
    """The run's Trainer twin, in its own process so that its peak memory is its own; its numbers, or the error it
    ended with under "error"."""
    fd, path = tempfile.mkstemp(prefix="peft-lab-twin-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(job.to_json())
    try:
        proc = subprocess.run([sys.executable, "-m", "runners.job.twin", path], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))})
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


if __name__ == "__main__":  # the twin's own process (measure_twin): JOB.json in, its numbers written back into it
    job_path = Path(sys.argv[1])
    job_path.write_text(json.dumps(run_twin(Job.from_json(job_path.read_text()))))
