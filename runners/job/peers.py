"""The peers the benchmark measures our loop against: `transformers.Trainer` set up as the seed notebooks did,
and set up as well as its options allow. Both train every weight of fp32 weights; each counts the real tokens it
trains on and the padded shape of each batch (for the FLOPs it computed). Each runs in a process of its own
(`measure_peer` starts `python -m runners.job.peers JOB.json`), so that its peak memory is its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from runners.data.batches import TokenizedSplit
from runners.measure import environment as env

# name -> (batch size, pad to max_length?, tuned options on)
PEERS = {
    "trainer-seed": {"batch_size": 4, "pad_to_max": True, "tuned": False},  # fp32, padded to 128, batch 4
    # bf16 where the device has it (as our loop), dynamic padding, length-grouped, fused AdamW, the fused GELU
    "trainer-tuned": {"batch_size": 32, "pad_to_max": False, "tuned": True},
}


class _Examples(torch.utils.data.Dataset):
    def __init__(self, split: TokenizedSplit, n: int) -> None:
        self.split, self.n = split, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if i >= self.n:  # plain iteration (Trainer's length grouping does it) stops at IndexError
            raise IndexError(i)
        i %= len(self.split)  # wrap around: a budget may exceed the split
        lo, hi = int(self.split.offsets[i]), int(self.split.offsets[i + 1])
        return {"input_ids": self.split.ids[lo:hi].tolist(), "labels": int(self.split.labels[i])}


def run_trainer(peer: str, model_dir: str, split: TokenizedSplit, *, samples: int, num_labels: int, pad_id: int,
                max_length: int, device: torch.device, lr: float = 2e-5, bf16: bool = True) -> dict:
    """Train `samples` examples with `Trainer` in the peer's setup; return its wall time and what it processed.

    `bf16`: the tuned peer autocasts to bf16 where our loop would (runners.measure.environment.precision), so that the
    ratio ours/peer measures the loop, not the dtype; False keeps it fp32. The seed-style peer is always fp32, as
    the seeds ran it. Both load fp32 weights whatever the checkpoint stores (transformers 5 would otherwise keep a
    float16 checkpoint, such as the stand-in, in float16 and train it so).
    """
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

    from methods import ModelContext
    from runners.data.models import load_tokenizer

    setup = PEERS[peer]
    tuned = setup["tuned"]
    autocast = tuned and env.precision(device, bf16).autocast
    # the tuned peer trains the model our loop trains (fused GELU, SDPA); the seed-style one the checkpoint's
    model_kwargs = ModelContext(model_dir, num_labels, pad_id, device).activation() if tuned else {}
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=num_labels, pad_token_id=pad_id,
                                                               dtype=torch.float32, use_safetensors=True,
                                                               **model_kwargs)
    tokenizer = load_tokenizer(model_dir)
    pad = DataCollatorWithPadding(tokenizer, padding="max_length" if setup["pad_to_max"] else "longest",
                                  max_length=max_length if setup["pad_to_max"] else None)
    real_tokens, shapes = [], []

    def collate(features):
        real_tokens.append(sum(len(f["input_ids"]) for f in features))
        batch = pad(features)
        shapes.append(tuple(batch["input_ids"].shape))  # (batch, padded width): the FLOPs it computes
        return batch

    steps = samples // setup["batch_size"]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=setup["batch_size"], max_steps=steps, learning_rate=lr,
            lr_scheduler_type="linear", warmup_steps=0.06, save_strategy="no", eval_strategy="no", report_to=[],
            logging_steps=max(steps, 1), disable_tqdm=True, use_cpu=device.type != "cuda", dataloader_num_workers=0,
            bf16=autocast, optim="adamw_torch_fused" if tuned else "adamw_torch",
            train_sampling_strategy="group_by_length" if tuned else "random",
        )
        trainer = Trainer(model=model, args=args, train_dataset=_Examples(split, steps * setup["batch_size"]),
                          data_collator=collate)
        seconds = trainer.train().metrics["train_runtime"]  # Trainer's own clock: its loop, as ours is timed
    trainable, total = env.count_parameters(model)
    return {"seconds": seconds, "samples": steps * setup["batch_size"], "tokens": int(sum(real_tokens)),
            "batch_size": setup["batch_size"], "trainable": trainable, "total": total, "shapes": shapes,
            "compute_dtype": "bfloat16" if autocast else "float32",
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}


class PeerJob(BaseModel):
    """A Trainer peer's measurement, as the bench hands it to the peer's own process."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    peer: str  # one of PEERS
    model_dir: str
    tokens: str
    num_labels: int
    pad_id: int
    samples: int
    max_length: int
    device: str = "auto"
    bf16: bool = True  # the bf16 speed-up, as our runs have it


def measure_peer(job: PeerJob) -> dict:
    """A `Trainer` peer, in its own process so that its peak memory is its own: `Trainer` is another loop, so this
    is the one measurement that does not run in the worker. Its numbers under the names of our records'."""
    fd, path = tempfile.mkstemp(prefix="peft-lab-peer-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(job.model_dump_json())
    try:
        proc = subprocess.run([sys.executable, "-m", "runners.job.peers", path], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def run_peer(job: PeerJob) -> dict:
    """In the peer's process: `Trainer` in the peer's setup for the job's samples."""
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from runners.data.batches import load_tokenized

    hf_logging.set_verbosity_error()
    device = env.resolve_device(job.device)
    env.reset_peak_memory(device)
    set_seed(0)  # before loading, as the worker does: the new head's initial weights
    r = run_trainer(job.peer, job.model_dir, load_tokenized(job.tokens)["train"], samples=job.samples,
                    num_labels=job.num_labels, pad_id=job.pad_id, max_length=job.max_length, device=device,
                    bf16=job.bf16)
    return {"train_seconds": r["seconds"], "samples": r["samples"], "tokens": r["tokens"],
            "samples_per_second": r["samples"] / r["seconds"], "tokens_per_second": r["tokens"] / r["seconds"],
            "trainable_params": r["trainable"], "total_params": r["total"], "shapes": r["shapes"],
            "peak_memory_mib": env.peak_memory(device)["peak_mib"], "batch_size": r["batch_size"],
            "compute_dtype": r["compute_dtype"], "weights_dtype": r["dtype"]}


if __name__ == "__main__":  # the peer's own process (measure_peer): JOB.json in, its numbers written back into it
    job_path = Path(sys.argv[1])
    job_path.write_text(json.dumps(run_peer(PeerJob.model_validate_json(job_path.read_text()))))
