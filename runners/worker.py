"""One run in its own process: build the method's model, train it, test it, and write its record.

Started by `runners.compare` as `python -m runners.worker JOB.json`; the job file holds the run config and
everything the parent already resolved (model folder, tokenized data, identities). Every way a run can end,
including errors, out-of-memory, Ctrl-C and SIGTERM, ends in a record with a status.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

from methods import ModelContext, parse_spec
from runners import environment as env
from runners import flops, memory
from runners.batches import Collator, load_tokenized
from runners.config import RunConfig
from runners.executor import ExitCode, Stopped, ignore_stop_signals, release_held_signals, stop_on_signals
from runners.records import base_record, write_json_atomic
from runners.train import Diverged, autocast_for, evaluate, train


def run(job: dict) -> dict:
    """Train and test one method spec with one seed; return the record's results part."""
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "score.weight newly initialised" report is expected, every time
    hf_logging.disable_progress_bar()
    # peft still calls transformers' pre-5.x names (is_gradient_checkpointing); nothing for a user to act on.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6", category=FutureWarning)
    cfg = RunConfig.from_dict(job["config"])
    device = env.resolve_device(cfg.device)
    env.reset_peak_memory(device)
    data = load_tokenized(job["tokens"])
    spec = parse_spec(cfg.method)
    method = spec.method
    if cfg.lr is not None:  # --lr overrides the method's default only when given
        method.params = dataclasses.replace(method.params, lr=cfg.lr)
    set_seed(cfg.seed)  # before loading: the new head's initial weights come from this seed
    ctx = ModelContext(job["model"]["path"], job["num_labels"], job["pad_id"], device,
                       use_safetensors=job["model_identity"].get("use_safetensors", True),
                       attention=cfg.attention)
    model = method.build(ctx)
    trainable, total = env.count_parameters(model)
    flop_model = flops.measure(model, device)
    micro, cap_enforced = cfg.batch_size, False
    if cfg.memory_cap and device.type == "cuda":
        memory.enforce_cap(memory.parse_size(cfg.memory_cap), device)
        collate = Collator(data["train"], ctx.pad_token_id, method.padding_side, device,
                           pad_to=None if cfg.speedup("dynamic_padding") else cfg.max_length)
        micro = memory.fit_micro_batch(model, collate, data["train"].lengths, cfg.batch_size,
                                       memory.adamw_state_bytes(model), device,
                                       autocast_for(device, cfg.speedup("bf16")))
        cap_enforced = True
        env.reset_peak_memory(device)  # the probe's peak is not the run's
    result = train(model, method, data, cfg, lr=method.params.lr, pad_id=ctx.pad_token_id,
                   num_labels=ctx.num_labels, device=device, flops=flop_model, micro_batch=micro,
                   quiet=job.get("quiet", False))
    spent = result.spent
    start = time.perf_counter()
    test = evaluate(model, data["test"], Collator(data["test"], ctx.pad_token_id, method.padding_side, device),
                    cfg.eval_batch_size, device, ctx.num_labels, cfg.speedup("bf16"))
    test_seconds = time.perf_counter() - start
    peak = env.peak_memory(device)
    peak_mib = peak["peak_mib"]
    return {
        "method": {"label": spec.label, "name": method.name, "summary": method.summary, "params": method.describe()},
        "metrics": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "eval_loss": test["loss"],
                    "majority_baseline": job["majority_baseline"]},
        "curve": result.curve,
        "measurements": {
            "train_seconds": spent.seconds,
            "compile_seconds": result.compile_seconds,
            "eval_seconds": result.eval_seconds + test_seconds,
            "steps": spent.steps, "samples": spent.samples, "tokens": spent.tokens, "flops": spent.flops,
            "samples_per_second": spent.samples / spent.seconds,
            "tokens_per_second": spent.tokens / spent.seconds,
            "flops_per_real_token": spent.flops / spent.tokens,
            "flop_model": flop_model.to_dict(),
            "final_train_loss": result.final_loss,
            "trainable_params": trainable, "total_params": total,
            "peak_memory_mib": peak.pop("peak_mib"), "peak_memory_kind": peak.pop("kind"), **peak,
            "memory_breakdown": memory.breakdown(model, result.optimizer_state_bytes, peak_mib),
            "micro_batch": micro, "accumulation_steps": -(-cfg.batch_size // micro),
            "memory_cap_enforced": cap_enforced,
        },
        "device": env.device_info(device),
    }


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    record = base_record(job)
    code = ExitCode.OK
    # Ctrl-C and SIGTERM both end in a `cancelled` record; the first raises, later ones are ignored so that they
    # cannot cut that record short (a terminal's Ctrl-C reaches this process and the parent passes it on too).
    with stop_on_signals(once=True):
        try:
            try:
                release_held_signals()  # one that came while Python and torch loaded is raised here, in the try
                record.update(run(job))
            finally:
                ignore_stop_signals()  # the run is over: a signal now has nothing left to stop but the record
        except torch.OutOfMemoryError as e:
            record.update(status="oom", error=_one_line(e))
        except memory.DoesNotFit as e:
            record.update(status="does-not-fit", error=str(e))
        except Diverged as e:
            record.update(status="diverged", error=str(e))
        except KeyboardInterrupt as e:
            stop = e if isinstance(e, Stopped) else Stopped()
            record.update(status="cancelled", error=f"interrupted ({stop.cause})")
            code = stop.exit_code
        except Exception as e:  # a failed run is a result too; the comparison goes on
            record.update(status="failed", error=_one_line(e), traceback=traceback.format_exc(limit=-8))
            code = ExitCode.ERROR
        record["timestamp"] = env.now()
        try:
            write_json_atomic(Path(job["record_path"]), record)
        except OSError as e:  # disk full or no permission: nothing half-written stays; the parent records `failed`
            print(f"error: cannot write the record {job['record_path']}: {e.strerror or e}", file=sys.stderr)
            return ExitCode.ERROR
    return code


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:500]}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
