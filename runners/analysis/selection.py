"""How a tuned experiment's learning rate is chosen from its search trials, and how the choice is shown.

`choose` is the one selection rule: the command uses it to pick the rate, and the tables to show it, from the same
records. A rate whose validation score is within one standard error of the best one's (the one-standard-error rule
of Breiman et al. 1984: √(s(1 − s)/n) for a score s on n validation rows, the noise of the validation set itself)
is tied with it, and of the tied rates the one nearest the middle of the range searched (on the log scale) is
chosen: a validation difference inside that noise never decides, and never walks the search out of its range. So
the search steps past an end of its range only where the rate at that end beats every other rate tried by more than
that noise; the tables flag a chosen rate at an end of those tried, and one outside the range.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runners.settings.config import RunConfig
from runners.settings.search import EXTEND_LIMIT, rounded
from runners.store.records import row_label
from runners.store.schema import Record

if TYPE_CHECKING:
    import pandas as pd

METRIC_KEYS = {"accuracy": "val_accuracy", "macro-f1": "val_macro_f1"}


def recorded_range(record: Record) -> tuple[float, float, str] | None:
    """The range a run's search searched, as its record says: written by the run itself since record schema 5;
    for older records, the declared range its parameters or config name (None where the method declared none)."""
    if record.method.lr_range is not None:
        return (*record.method.lr_range, record.method.lr_range_source or "method")
    cfg, declared = record.config, (record.method.params or {}).get("lr_range")
    given = any(pair.partition("=")[0] == "lr_range" for pair in cfg.method.split(":")[1:])
    if cfg.lr_range is not None and not given:
        return float(cfg.lr_range[0]), float(cfg.lr_range[1]), "--lr-range"
    if declared:
        return float(declared[0]), float(declared[1]), "spec" if given else "method"
    return None


@dataclass
class Choice:
    """The outcome of one spec's search, from its trial records alone."""

    label: str
    lr: float | None  # the chosen rate; None when no rate had every search seed end ok
    score: float | None  # its mean validation metric over the search seeds
    edge: str | None  # "low" or "high": the chosen rate is the lowest or highest tried (not bracketed)
    scores: dict[float, float | None] = field(default_factory=dict)  # each rate tried: mean score, None if it failed
    per_seed: dict[float, list[float]] = field(default_factory=dict)  # each rate's scores, one per ok seed
    trials: int = 0
    seconds: float = 0.0  # measured: training, evaluation and compilation of every trial
    flops: float = 0.0  # training FLOPs of every trial
    failures: list[str] = field(default_factory=list)  # "lr 0.1 seed 1000: diverged", for the console and the table
    best: float | None = None  # the rate with the highest mean score, before the tie rule
    noise: float | None = None  # one standard error of the best score on the validation rows
    tied: list[float] = field(default_factory=list)  # the rates within `noise` of the best, the chosen among them
    range: tuple[float, float] | None = None  # the range searched (None: not recorded, an old record)
    range_source: str | None = None  # who set it (RANGE_SOURCES)
    earlier_rule: bool = False  # chosen by the rule before the tie rule: trials recorded before record schema 5

    @property
    def flag(self) -> str:
        return {"low": "at the low end", "high": "at the high end"}.get(self.edge or "", "")

    @property
    def outside(self) -> bool:
        """The chosen rate lies outside the range searched: an extension won by more than the noise."""
        if self.lr is None or self.range is None:
            return False
        return self.lr < rounded(self.range[0]) * 0.999 or self.lr > rounded(self.range[1]) * 1.001


def score(record: Record, select_on: str) -> float | None:
    """A trial's validation metric at the end of its budget (its last checkpoint)."""
    if not record.ok or not record.curve:
        return None
    return getattr(record.curve[-1], METRIC_KEYS[select_on])


def choose(label: str, trials: Sequence[Record], select_on: str,
           key: Callable[[Record], str] = row_label) -> Choice:
    """The rate chosen from the search trials of `label`: of the rates whose mean validation metric over the search
    seeds is within one standard error of the best mean (the tie rule in the module's docstring), the one nearest
    the middle of the range searched on the log scale (the lower on a tie). A rate where some seed did not end ok is
    out. Records other than the search trials whose `key` (the table's row label, or the spec for the command's own
    search) is `label` are ignored."""
    mine = [r for r in trials if r.config.search and key(r) == label]
    by_lr: dict[float, list[Record]] = {}
    for r in mine:
        by_lr.setdefault(float(r.config.lr), []).append(r)
    scores, per_seed, failures = {}, {}, []
    for lr in sorted(by_lr):
        values = [score(r, select_on) for r in by_lr[lr]]
        per_seed[lr] = [v for v in values if v is not None]
        scores[lr] = statistics.fmean(values) if None not in values else None
        failures += [f"lr {lr:g} seed {r.seed}: {r.status.value}" for r in by_lr[lr] if not r.ok]
    ok = {lr: s for lr, s in scores.items() if s is not None}
    searched = next((found for r in mine if (found := recorded_range(r)) is not None), None)
    best = max(ok, key=lambda lr: (ok[lr], -lr)) if ok else None
    chosen, noise, tied = best, None, []
    # Trials recorded before the tie rule (record schema < 5, which did not record the range searched) keep the
    # rule their reported runs were chosen by: the highest mean, ties to the lower rate; the table says so.
    earlier = bool(mine) and all(r.method.lr_range is None for r in mine)
    if best is not None and not earlier:
        rows = mine[0].data.get("rows", {}).get("validation")
        noise = math.sqrt(ok[best] * (1 - ok[best]) / rows) if rows else 0.0
        tied = sorted(lr for lr, s in ok.items() if s >= ok[best] - noise - 1e-12)
        lo, hi = searched[:2] if searched else (min(scores), max(scores))
        middle = math.log(math.sqrt(lo * hi))
        chosen = min(tied, key=lambda lr: (abs(math.log(lr) - middle), lr))
    edge = None
    if chosen is not None and len(scores) > 1:
        edge = "low" if chosen == min(scores) else "high" if chosen == max(scores) else None
    m = [r.measurements for r in mine if r.measurements is not None]
    return Choice(label, chosen, ok.get(chosen), edge, scores, per_seed, len(mine),
                  seconds=sum(x.train_seconds + x.eval_seconds + x.compile_seconds for x in m),
                  flops=sum(x.flops or 0.0 for x in m), failures=failures, best=best, noise=noise, tied=tied,
                  range=searched[:2] if searched else None, range_source=searched[2] if searched else None,
                  earlier_rule=earlier)


def search_note(cfg: RunConfig) -> str:
    """How the rates of a tuned experiment were chosen, in one clause, for the table's notes."""
    seeds = ", ".join(map(str, cfg.search_seeds))
    where = (f"--lr-range {cfg.lr_range[0]:g},{cfg.lr_range[1]:g}" if cfg.lr_range
             else "the range each method declares (`--list`: lr_range)")
    return (f"{cfg.tune_lr} rates log-spaced over {where} (a decade either side of the default rate for a method "
            f"that declares none), each trial trained on this budget with search seed(s) {seeds} (not the reported "
            f"seeds) and scored on validation {cfg.select_on} at its end, never on the test split; the rates within "
            f"one standard error of the best score (√(s(1−s)/n), n validation rows) are tied, and the one nearest the "
            f"middle of the range (log scale) is chosen; where that is an end of the rates tried the search steps "
            f"one grid step past it, up to {EXTEND_LIMIT} steps")


def search_frame(experiment_id: str, trials: Sequence[Record]) -> pd.DataFrame:
    """Every search trial of an experiment, a row each, for `search.csv`: its rate, seed, status and score."""
    import pandas as pd

    rows = []
    for r in sorted(trials, key=lambda r: (row_label(r), r.config.lr, r.seed)):
        last = r.curve[-1] if r.ok and r.curve else None
        rows.append({"experiment": experiment_id, "method": row_label(r), "lr": r.config.lr, "seed": r.seed,
                     "status": r.status.value, "error": r.error,
                     "val accuracy": last.val_accuracy if last else None,
                     "val macro-F1": last.val_macro_f1 if last else None,
                     "train seconds": r.measurements.train_seconds if r.measurements else None,
                     "flops": r.measurements.flops if r.measurements else None,
                     "budget": r.config.budget, "run_id": r.run_id})
    return pd.DataFrame(rows)
