"""The columns of a comparison table: how each reads a run's value, which way is better (↑/↓), how it prints, and
the kind of interval it gets; one per checkpoint besides."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from runners.analysis.stats import reach_interval
from runners.store.schema import Record

if TYPE_CHECKING:
    from runners.analysis.experiment import Experiment


@dataclass(frozen=True)
class Column:
    """A table column: how to read a run's value, which way is better (↑/↓), how to print it, and whether it is a
    positive, skewed quantity (time, memory, throughput) whose interval is taken on the log scale."""

    get: Callable[[Record], float | None]
    better: str
    fmt: str
    positive: bool = False
    share: bool = False  # a number in [0, 1] (accuracy, F1, AUC, ECE): its interval is taken on the logit scale


def _at(path: tuple[str, ...]) -> Callable[[Record], float | None]:
    def get(record: Record):
        for key in path:
            record = getattr(record, key, None)
        return record
    return get


STATIC = {
    "test acc": Column(_at(("metrics", "accuracy")), "↑", "{:.4f}", share=True),
    "macro-F1": Column(_at(("metrics", "macro_f1")), "↑", "{:.4f}", share=True),
    "weighted-F1": Column(_at(("metrics", "weighted_f1")), "↑", "{:.4f}", share=True),
    "AUC": Column(_at(("metrics", "auc_macro")), "↑", "{:.4f}", share=True),
    "ECE": Column(_at(("metrics", "ece")), "↓", "{:.4f}", share=True),
    "peak mem (MiB)": Column(_at(("measurements", "peak_memory_mib")), "↓", "{:,.0f}", positive=True),
    "train time (s)": Column(_at(("measurements", "train_seconds")), "↓", "{:.1f}", positive=True),
    "samples/s": Column(_at(("measurements", "samples_per_second")), "↑", "{:.1f}", positive=True),
    # What the classifier costs to keep and to serve (the serve stage), and to train (device time, money)
    "artifact (KiB)": Column(lambda r: r.serving.artifact_bytes / 1024 if r.serving else None, "↓", "{:,.1f}",
                             positive=True),
    "latency b1 (ms)": Column(_at(("serving", "latency_ms")), "↓", "{:.1f}", positive=True),
    "throughput (texts/s)": Column(_at(("serving", "throughput_per_second")), "↑", "{:,.0f}", positive=True),
    "device-hours": Column(_at(("cost", "device_hours")), "↓", "{:.2g}", positive=True),
    "cost (USD)": Column(_at(("cost", "money")), "↓", "{:.2g}", positive=True),
}
# Shown where some record has them (older records do not; serving and cost columns only where the stage ran)
OPTIONAL = ("weighted-F1", "AUC", "ECE", "artifact (KiB)", "latency b1 (ms)", "throughput (texts/s)",
            "device-hours", "cost (USD)")
SERVING_TEXT = ("mergeable", "extra tokens")  # text cells from the first ok seed's serving part
RANK_BY = "test acc"
VS_MAJORITY = "beats majority"
TO_TARGET = "budget to target"


def _curve_value(record: Record, fraction: float, key: str, later: float | None = None):
    """The metric at the first evaluation at or past `fraction` of the budget; None when that evaluation is also
    past the `later` checkpoint (a budget of few steps evaluates several checkpoints at one step: it belongs to
    the last of them, and the earlier ones were not reached on their own)."""
    point = next((p for p in record.curve if p.fraction >= fraction - 1e-6), None)
    if point is None or (later is not None and point.fraction >= later - 1e-6):
        return None
    return getattr(point, key, None)


def reach(record: Record, target: float, unit_key: str) -> tuple[float, float] | None:
    """The interval (lo, hi] of the budget (in `unit_key`) in which the run first reached `target`."""
    return reach_interval([(getattr(p, unit_key), p.val_accuracy) for p in record.curve], target)


def columns(exp: Experiment) -> dict[str, Column]:
    """The static columns (the optional metrics where some record has them), then one per checkpoint."""
    cfg, records = exp.config, exp.records
    key = "test_accuracy" if cfg.test_each_checkpoint else "val_accuracy"
    cols = {n: c for n, c in STATIC.items() if n not in OPTIONAL or any(c.get(r) is not None for r in records)}
    marks = sorted(set(cfg.checkpoints) | {1.0})
    for f, later in zip(marks[:-1], marks[1:]):  # the last checkpoint is the end: its test accuracy is shown
        cols[f"{'test' if 'test' in key else 'val'} acc @{_share(f)}"] = Column(
            lambda r, f=f, later=later: _curve_value(r, f, key, later), "↑", "{:.3f}", share=True)
    return cols


def _share(f: float) -> str:
    frac = Fraction(f).limit_denominator(64)
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator > 1 else str(frac.numerator)
