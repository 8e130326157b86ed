"""One run in its own process: run its stages (build and train the method's model, test it...), write its record.

Started by an executor (`runners.executor`) as `python -m runners.worker JOB.json`, for `runners.compare` and
`runners.bench` alike; the job file (`common_job`, `job_for`) holds the run config and everything the parent already
resolved (model folder, tokenized data, identities). Every way a run can end, including errors, out-of-memory,
Ctrl-C and SIGTERM, ends in a record with a status.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

from methods import Method, ModelContext, load_plugin, parse_spec
from runners import baseline_stage, flops, memory, serving, stages, tune  # noqa: F401 (baseline_stage, serving: stages)
from runners import environment as env
from runners.batches import Collator, load_tokenized
from runners.config import RunConfig
from runners.executor import ExitCode, Stopped, ignore_stop_signals, release_held_signals, stop_on_signals
from runners.record import RecordError, Status
from runners.records import base_record, write_record
from runners.scores import stored_predictions
from runners.stages import Context, peak_memory_part, stage
from runners.train import Diverged, autocast_for, evaluate, train


def run(job: dict) -> dict:
    """Run the stages the job lists (by default `stages.DEFAULT`: train, evaluate, serve) for one method spec and seed;
    return the record's results part."""
    if threads := os.environ.get("PEFT_LAB_THREADS"):  # this run's share of the cores, from a pool (runners.pool)
        torch.set_num_threads(int(threads))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "score.weight newly initialised" report is expected, every time
    hf_logging.disable_progress_bar()
    # peft still calls transformers' pre-5.x names (is_gradient_checkpointing); nothing for a user to act on.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6", category=FutureWarning)
    for plugin in job.get("plugins", ()):  # the parent's --plugin modules: the method may be one of theirs
        load_plugin(plugin)
    cfg = RunConfig.from_dict(job["config"])
    device = env.resolve_device(cfg.device)
    env.reset_peak_memory(device)
    data = load_tokenized(job["tokens"])
    if cfg.search:  # a learning-rate search trial never sees the test split: it is not there to evaluate
        data.pop("test")
    ctx = Context(job, cfg, device, data)
    where = job.get("placement", {})  # the executor's: its name, the slot, host and threads (runners.executor)
    return {**stages.run_stages(ctx, job.get("stages", stages.DEFAULT)),
            "device": {**where, **env.device_info(device, cfg.bf16(device))}}


@stage("train")
def train_stage(ctx: Context) -> dict:
    """Build the method's model (the new head seeded by the run's seed) and train it until the budget is spent."""
    from transformers import set_seed

    cfg, job = ctx.cfg, ctx.job
    spec = parse_spec(cfg.method)
    method = spec.method
    searched = tune.searched_range(spec.label, method, cfg) if cfg.tune_lr is not None else None  # default rate's
    if cfg.lr is not None:  # --lr overrides the method's default only when given
        method.params = dataclasses.replace(method.params, lr=cfg.lr)
    set_seed(cfg.seed)  # before loading: the new head's initial weights come from this seed
    mctx = ModelContext(job["model"]["path"], job["num_labels"], job["pad_id"], ctx.device,
                        use_safetensors=job["model_identity"].get("use_safetensors", True), attention=cfg.attention,
                        bf16=cfg.bf16(ctx.device), fused_gelu=cfg.speedup("fused_gelu"))
    model = method.build(mctx)
    trainable, total = env.count_parameters(model, method.stored_values_per_element)
    flop_model = flops.measure(model, ctx.device, method.unseen_forward_flops)
    micro, cap_enforced = _micro_batch(ctx, model, method, mctx.pad_token_id)
    result = train(model, method, ctx.data, cfg, lr=method.params.lr, pad_id=mctx.pad_token_id,
                   num_labels=mctx.num_labels, device=ctx.device, flops=flop_model, micro_batch=micro,
                   quiet=job.get("quiet", False))
    ctx.method, ctx.model_context, ctx.model, ctx.trained = method, mctx, model, result
    spent = result.spent
    return {
        "method": {"label": spec.label, "name": method.name, "summary": method.summary, "params": method.describe(),
                   **({"lr_range": searched[:2], "lr_range_source": searched[2]} if searched else {})},
        "curve": result.curve,
        "measurements": {
            "train_seconds": spent.seconds,
            "compile_seconds": result.compile_seconds,
            "eval_seconds": result.eval_seconds,  # the checkpoints'; the evaluate stage adds the test's
            "steps": spent.steps, "samples": spent.samples, "tokens": spent.tokens, "flops": spent.flops,
            "samples_per_second": spent.samples / spent.seconds,
            "tokens_per_second": spent.tokens / spent.seconds,
            "flops_per_real_token": spent.flops / spent.tokens,
            "flop_model": flop_model.to_dict(),
            "final_train_loss": result.final_loss,
            "trainable_params": trainable, "total_params": total,
            "micro_batch": micro, "accumulation_steps": -(-cfg.batch_size // micro),
            "memory_cap_enforced": cap_enforced,
        },
    }


def _micro_batch(ctx: Context, model: torch.nn.Module, method: Method, pad_id: int) -> tuple[int, bool]:
    """The micro-batch that fits under --memory-cap, which is enforced on CUDA only; and whether it was."""
    cfg, device = ctx.cfg, ctx.device
    if not (cfg.memory_cap and device.type == "cuda"):
        return cfg.batch_size, False
    memory.enforce_cap(memory.parse_size(cfg.memory_cap), device)
    collate = Collator(ctx.data["train"], pad_id, method.padding_side, device,
                       pad_to=None if cfg.speedup("dynamic_padding") else cfg.max_length)
    micro = memory.fit_micro_batch(model, collate, ctx.data["train"].lengths, cfg.batch_size,
                                   method.optimizer_state_bytes(model), device,
                                   autocast_for(device, cfg.bf16(device)))
    env.reset_peak_memory(device)  # the probe's peak is not the run's
    return micro, True


@stage("evaluate")
def evaluate_stage(ctx: Context) -> dict:
    """Test the trained model; then read the run's peak memory (training and testing) and what it is made of."""
    cfg, mctx, test_split = ctx.cfg, ctx.model_context, ctx.data["test"]
    start = time.perf_counter()
    test = evaluate(ctx.model, test_split, Collator(test_split, mctx.pad_token_id, ctx.method.padding_side, ctx.device),
                    cfg.eval_batch_size, ctx.device, mctx.num_labels, cfg.bf16(ctx.device), detailed=True)
    test_seconds = time.perf_counter() - start
    peak = peak_memory_part(ctx.device)
    return {
        "metrics": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "eval_loss": test["loss"],
                    "majority_baseline": ctx.job["majority_baseline"],
                    **{k: test[k] for k in ("weighted_f1", "auc_macro", "auc_weighted", "ece")}},
        "predictions": stored_predictions(test_split.labels.numpy(), test.pop("proba"),
                                          ctx.job["data_identity"]["content_sha256"]["test"]),
        "measurements": {
            "eval_seconds": ctx.parts["measurements"]["eval_seconds"] + test_seconds, **peak,
            "memory_breakdown": memory.breakdown(ctx.model, ctx.trained.optimizer_state_bytes,
                                                 peak["peak_memory_mib"], ctx.method.weight_kind),
        },
    }


@stage("validate")
def validate_stage(ctx: Context) -> dict:
    """A learning-rate search trial's end (runners.tune): its score is the validation metrics of the train stage's
    last checkpoint, already in its curve; the test split is not evaluated (the worker did not even load it). Then
    the run's peak memory and what it is made of."""
    peak = peak_memory_part(ctx.device)
    return {"measurements": {**peak, "memory_breakdown": memory.breakdown(
        ctx.model, ctx.trained.optimizer_state_bytes, peak["peak_memory_mib"], ctx.method.weight_kind)}}


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
            record.update(status=Status.OOM.value, error=_one_line(e))
        except memory.DoesNotFit as e:
            record.update(status=Status.DOES_NOT_FIT.value, error=str(e))
        except Diverged as e:
            record.update(status=Status.DIVERGED.value, error=str(e))
        except KeyboardInterrupt as e:
            stop = e if isinstance(e, Stopped) else Stopped()
            record.update(status=Status.CANCELLED.value, error=f"interrupted ({stop.cause})")
            code = stop.exit_code
        except Exception as e:  # a failed run is a result too; the comparison goes on
            record.update(status=Status.FAILED.value, error=_one_line(e), traceback=traceback.format_exc(limit=-8))
            code = ExitCode.ERROR
        record["timestamp"] = env.now()
        try:
            try:
                write_record(Path(job["record_path"]), record)
            except RecordError as e:  # e.g. a NaN metric: the run failed, and the tables must not break on it
                record = {**base_record(job, Status.FAILED, f"the run's record is not valid: {e}"),
                          "timestamp": record["timestamp"]}
                write_record(Path(job["record_path"]), record)
                code = ExitCode.ERROR
        except OSError as e:  # disk full or no permission: nothing half-written stays; the parent records `failed`
            print(f"error: cannot write the record {job['record_path']}: {e.strerror or e}", file=sys.stderr)
            return ExitCode.ERROR
    return code


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:500]}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
