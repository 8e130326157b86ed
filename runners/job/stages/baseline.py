"""The worker stage of a classical baseline: fit it on the training texts to convergence, test it, record it."""
from __future__ import annotations

import time

import pandas as pd

from runners.job.stages import Context, peak_memory_part, stage
from runners.measure.scores import classification_metrics, stored_predictions


@stage("baseline")
def baseline_stage(ctx: Context) -> dict:
    """Fit the baseline named by the run's spec on the train rows (the same rows the methods train on) with the run's
    seed, then score the test rows. It is not budget-matched: it trains to convergence, and the tables say so."""
    from baselines import parse_spec

    spec = parse_spec(ctx.cfg.method)
    baseline = spec.baseline
    texts = pd.read_parquet(ctx.job.texts)
    train, test = texts[texts.split == "train"], texts[texts.split == "test"]
    start = time.perf_counter()
    baseline.fit(train.text.tolist(), train.label.to_numpy(), seed=ctx.cfg.seed, num_labels=ctx.job.num_labels)
    proba = baseline.predict_proba(test.text.tolist())
    scores = classification_metrics(test.label.to_numpy(), proba)
    eval_seconds = time.perf_counter() - start - baseline.fit_seconds
    return {
        "method": {"label": spec.label, "kind": "baseline", "name": baseline.name, "summary": baseline.summary,
                   "params": baseline.describe()},
        "metrics": {**scores, "majority_baseline": ctx.job.majority_baseline},
        "predictions": stored_predictions(test.label.to_numpy(), proba,
                                          ctx.job.data["content_sha256"]["test"]),
        "measurements": {"train_seconds": baseline.fit_seconds, "eval_seconds": eval_seconds,
                         "samples": len(train), "samples_per_second": len(train) / baseline.fit_seconds,
                         **peak_memory_part(ctx.device)},
    }
