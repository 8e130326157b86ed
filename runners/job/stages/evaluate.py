"""The end of a run: the evaluate stage tests the trained model; a learning-rate search trial's validate stage does
not (its score is validation's). Both then read the run's peak memory and what it is made of."""
from __future__ import annotations

import time

from runners.data.batches import Collator
from runners.job.loop import evaluate
from runners.job.stages import Context, peak_memory_part, stage
from runners.measure import memory
from runners.measure.scores import stored_predictions


@stage("evaluate")
def evaluate_stage(ctx: Context) -> dict:
    """Test the trained model; then read the run's peak memory (training and testing) and what it is made of."""
    cfg, mctx, test_split = ctx.cfg, ctx.model_context, ctx.data["test"]
    start = time.perf_counter()
    test = evaluate(ctx.model, test_split, Collator(test_split, mctx.pad_token_id, ctx.method.padding_side, ctx.device),
                    cfg.eval_batch_size, ctx.device, mctx.num_labels, cfg.bf16(ctx.device), detailed=True)
    test_seconds = time.perf_counter() - start
    peak = peak_memory_part(ctx.device)
    ctx.high_water["tested"] = peak["peak_memory_mib"]
    return {
        "metrics": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "eval_loss": test["loss"],
                    "majority_baseline": ctx.job.majority_baseline,
                    **{k: test[k] for k in ("weighted_f1", "auc_macro", "auc_weighted", "ece")}},
        "predictions": stored_predictions(test_split.labels.numpy(), test.pop("proba"),
                                          ctx.job.data["content_sha256"]["test"]),
        "measurements": {
            "eval_seconds": ctx.parts["measurements"]["eval_seconds"] + test_seconds, **peak,
            "memory_breakdown": memory.breakdown(ctx.model, ctx.trained.optimizer_state_bytes,
                                                 peak["peak_memory_mib"], ctx.method.weight_kind, ctx.high_water),
        },
    }


@stage("validate")
def validate_stage(ctx: Context) -> dict:
    """A learning-rate search trial's end (runners.planning.search): its score is the validation metrics of the train
    stage's
    last checkpoint, already in its curve; the test split is not evaluated (the worker did not even load it). Then
    the run's peak memory and what it is made of."""
    peak = peak_memory_part(ctx.device)
    return {"measurements": {**peak, "memory_breakdown": memory.breakdown(
        ctx.model, ctx.trained.optimizer_state_bytes, peak["peak_memory_mib"], ctx.method.weight_kind,
        ctx.high_water)}}


