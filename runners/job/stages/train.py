"""The train stage: build the method's model (the new head seeded by the run's seed) and train it until the budget is
spent, with the measurements a run's table reads (time, FLOPs, parameters, the loss)."""
from __future__ import annotations

import dataclasses

import torch

from methods import Method, ModelContext, parse_spec
from runners.data.batches import Collator
from runners.job.loop import autocast_for, train
from runners.job.spec import Job
from runners.job.stages import Context, stage
from runners.measure import environment as env
from runners.measure import flops, memory
from runners.settings.budget import parse_size
from runners.settings.search import searched_range


@stage("train")
def train_stage(ctx: Context) -> dict:
    """Build the method's model (the new head seeded by the run's seed) and train it until the budget is spent."""
    cfg, job = ctx.cfg, ctx.job
    spec = parse_spec(cfg.method)
    searched = searched_range(spec.label, spec.method, cfg) if cfg.tune_lr is not None else None  # default rate's
    method, mctx, model = build_model(job, ctx.device)
    ctx.high_water["loaded"] = env.peak_memory(ctx.device)["peak_mib"]
    trainable, total = env.count_parameters(model, method.stored_values_per_element)
    flop_model = flops.measure(model, ctx.device, method.unseen_forward_flops)
    ctx.high_water["flops_probe"] = env.peak_memory(ctx.device)["peak_mib"]
    micro, cap_enforced = _micro_batch(ctx, model, method, mctx.pad_token_id)
    result = train(model, method, ctx.data, cfg, lr=method.params.lr, pad_id=mctx.pad_token_id,
                   num_labels=mctx.num_labels, device=ctx.device, flops=flop_model, micro_batch=micro,
                   quiet=job.quiet)
    ctx.high_water["trained"] = env.peak_memory(ctx.device)["peak_mib"]  # validation at the checkpoints included
    ctx.method, ctx.model_context, ctx.model, ctx.trained = method, mctx, model, result
    spent = result.spent
    return {
        "method": {"label": spec.label, "name": method.name, "summary": method.summary, "params": method.describe(),
                   "modules": method.modules(),
                   **({"lr_range": searched[:2], "lr_range_source": searched[2]} if searched else {})},
        "loaded": {**method.arch.summary(), "attention": mctx.attention_in_use(),
                   "activation": mctx.activation_in_use(), "pad_token_id": mctx.pad_token_id},
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


def build_model(job: Job, device: torch.device) -> tuple[Method, ModelContext, torch.nn.Module]:
    """The run's method (its rate set by --lr where given) and the model it builds, the new head seeded by the run's
    seed: what our loop trains, and what the bench's Trainer twin trains (runners.job.twin)."""
    from transformers import set_seed

    cfg = job.config
    method = parse_spec(cfg.method).method
    if cfg.lr is not None:  # --lr overrides the method's default only when given
        method.params = dataclasses.replace(method.params, lr=cfg.lr)
    set_seed(cfg.seed)  # before loading: the new head's initial weights come from this seed
    mctx = ModelContext(job.model.path, job.num_labels, job.pad_id, device,
                        use_safetensors=job.model.use_safetensors, attention=cfg.attention,
                        bf16=cfg.bf16(device), fused_gelu=cfg.speedup("fused_gelu"),
                        compute_dtype=env.precision(device, cfg.bf16(device)).name)
    return method, mctx, method.build(mctx)


def _micro_batch(ctx: Context, model: torch.nn.Module, method: Method, pad_id: int) -> tuple[int, bool]:
    """The micro-batch that fits under --memory-cap, which is enforced on CUDA only; and whether it was."""
    cfg, device = ctx.cfg, ctx.device
    if not (cfg.memory_cap and device.type == "cuda"):
        return cfg.batch_size, False
    memory.enforce_cap(parse_size(cfg.memory_cap), device)
    collate = Collator(ctx.data["train"], pad_id, method.padding_side, device,
                       pad_to=None if cfg.speedup("dynamic_padding") else cfg.max_length)
    micro = memory.fit_micro_batch(model, collate, ctx.data["train"].lengths, cfg.batch_size,
                                   method.optimizer_state_bytes(model), device,
                                   autocast_for(device, cfg.bf16(device)))
    env.reset_peak_memory(device)  # the probe's peak is not the run's
    return micro, True


