"""The learning-rate search (`--tune-lr N`): every method at its own best rate, under the comparison's budget.

For each method spec, N rates log-spaced over the range the method declares (`lr_range`; a spec's `:lr_range=` or
`--lr-range` overrides it). Each trial is an ordinary run, marked `search` in its config: it trains with the
comparison's whole budget (the schedule follows the share of budget spent, and no trial is stopped early), on the
search seeds (never the reported ones), and is scored on the validation split alone: its job's stages are
`stages.SEARCH`, and the worker does not load the test split. When the best rate is at an end of the grid, the grid
is extended one step past it (the grid's spacing, at most `MAX_STEP`), up to `EXTEND_LIMIT` steps a side, so that
the optimum is bracketed; a best still at an end is flagged. The chosen rate then runs the reported seeds, which give
the test numbers.

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
from pathlib import Path
from typing import TYPE_CHECKING

from runners import stages
from runners.config import RunConfig
from runners.record import Record, Status
from runners.records import base_record, read_record, row_label, write_record

EXTEND_LIMIT = 2  # steps past each end of the declared range, at most
MAX_STEP = 10.0  # an extension's step: the grid's spacing, but never more than a decade (N=2 spans the range)
# A trial that ended so would end so again at that rate and seed: resume does not run it again, and the selection
# counts it as a rate that does not work (divergence brackets the optimum from above as well as a low score does).
SETTLED = (Status.OK, Status.DIVERGED, Status.OOM, Status.DOES_NOT_FIT)
if TYPE_CHECKING:
    import pandas as pd

METRIC_KEYS = {"accuracy": "val_accuracy", "macro-f1": "val_macro_f1"}
RANGE_SOURCES = ("method", "spec", "--lr-range", "default")  # who set the range searched (Record.method)


def grid(lo: float, hi: float, n: int) -> list[float]:
    """`n` rates log-spaced from `lo` to `hi`, both included, each to three significant digits."""
    if n == 1:
        return [_round(math.sqrt(lo * hi))]
    return [_round(lo * (hi / lo) ** (i / (n - 1))) for i in range(n)]


def step(lo: float, hi: float, n: int) -> float:
    """The ratio between neighbouring rates of the grid: one step of an extension past its end."""
    return (hi / lo) ** (1 / max(n - 1, 1))


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def lr_range(label: str, cfg: RunConfig) -> tuple[float, float]:
    """The range searched for a spec: its own `:lr_range=`, else `--lr-range`, else what the method declares."""
    from methods import parse_spec

    return searched_range(label, parse_spec(label).method, cfg)[:2]


def searched_range(label: str, method, cfg: RunConfig) -> tuple[float, float, str]:
    """(lo, hi, who set it: one of RANGE_SOURCES) for a spec's method, before its rate is set for a run. A method
    that declares no range searches a decade either side of its default rate ("default", flagged in the table)."""
    given = any(pair.partition("=")[0] == "lr_range" for pair in label.split(":")[1:])
    if cfg.lr_range is not None and not given:
        return float(cfg.lr_range[0]), float(cfg.lr_range[1]), "--lr-range"
    lo, hi = method.lr_range()
    declared = method.params.lr_range is not None
    return lo, hi, ("spec" if given else "method") if declared else "default"


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
        return self.lr < _round(self.range[0]) * 0.999 or self.lr > _round(self.range[1]) * 1.001


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


def extension(choice: Choice, lo: float, hi: float, n: int) -> float | None:
    """The next rate to try past the end where the best sits, or None when it is bracketed or the limit is hit."""
    if choice.edge is None or choice.lr is None:
        return None
    ratio = min(step(lo, hi, n), MAX_STEP)
    lo, hi = _round(lo), _round(hi)  # the grid's own ends, as rounded: not an extension
    beyond = [lr for lr in choice.scores if (lr < lo * 0.999 if choice.edge == "low" else lr > hi * 1.001)]
    if len(beyond) >= EXTEND_LIMIT:
        return None
    return _round(choice.lr / ratio if choice.edge == "low" else choice.lr * ratio)


def trial_job(common: dict, label: str, lr: float, seed: int, settings: dict, folder: Path) -> dict:
    """One search trial's job: the comparison's settings at rate `lr` on search seed `seed`, train-and-validate."""
    from runners.plan import job_for

    cfg = RunConfig(method=label, seed=seed, **{**settings, "lr": lr, "search": True})
    return job_for(common, cfg, folder, stages=list(stages.SEARCH))


def unsearched_record(job: dict, choice: Choice) -> Record:
    """The record of a reported run that cannot train: its spec's search found no rate at which every search seed
    ended ok. Written, so that the table shows the row and why, and the command exits non-zero."""
    from runners.environment import now

    error = f"no learning rate had every search trial end ok: {'; '.join(choice.failures) or 'no trial ran'}"
    return write_record(Path(job["record_path"]), {**base_record(job, Status.FAILED, error), "timestamp": now()})


def unsettled_trials(labels: Sequence[str], settings: dict, common: dict, folder: Path, rerun: bool = False) -> int:
    """How many trials of the first grid are still to run (for the estimate before any of them trains)."""
    cfg = RunConfig(method=labels[0], seed=0, **settings)
    jobs = [trial_job(common, label, lr, seed, settings, folder) for label in labels
            for lr in grid(*lr_range(label, cfg), cfg.tune_lr) for seed in cfg.search_seeds]
    return sum(rerun or not _settled(job) for job in jobs)


def _spec(record: Record) -> str:
    return record.config.method


def _settled(job: dict) -> bool:
    record = read_record(Path(job["record_path"]))
    return record is not None and record.status in SETTLED


def search(labels: Sequence[str], settings: dict, common: dict, folder: Path,
           execute: Callable[[list[dict]], None], rerun: bool = False,
           log: Callable[[str], None] = print) -> dict[str, Choice]:
    """Search each spec's rate: the grid, then extensions past an edge best, round by round until every spec is
    bracketed or at its limit. `execute(jobs)` runs trials; a trial whose record is settled is not run again
    (unless `rerun`). Returns each spec's choice."""
    cfg = RunConfig(method=labels[0], seed=0, **settings)
    n, seeds = cfg.tune_lr, cfg.search_seeds
    ranges = {label: lr_range(label, cfg) for label in labels}
    rates = {label: grid(*ranges[label], n) for label in labels}
    jobs: dict[str, list[dict]] = {label: [] for label in labels}  # each spec's trials so far
    pending, choices = {label: rates[label] for label in labels}, {}
    while pending:  # a round: the rates not tried yet, then the choice, then the extensions it asks for
        new = [trial_job(common, label, lr, seed, settings, folder)
               for label, lrs in pending.items() for lr in lrs for seed in seeds]
        todo = [job for job in new if rerun or not _settled(job)]
        if len(todo) < len(new):
            log(f"search: {len(new) - len(todo)} of {len(new)} trials have a settled record, not run again "
                f"(--rerun runs them again)")
        execute(todo)
        extend = {}
        for label in pending:
            jobs[label] += [job for job in new if job["config"]["method"] == label]
            records = [r for job in jobs[label] if (r := read_record(Path(job["record_path"]))) is not None]
            choices[label] = choice = choose(label, records, cfg.select_on, key=_spec)
            nxt = extension(choice, *ranges[label], n)
            if nxt is not None and nxt not in choice.scores:
                beats = (f" and beats the rest by more than the validation noise ({choice.noise:.3f})"
                         if choice.noise is not None else "")
                log(f"{label}: the chosen rate, {choice.lr:g}, is at the {choice.edge} end of those tried{beats}: "
                    f"trying {nxt:g}")
                extend[label] = [nxt]
        pending = extend
    for label in labels:
        c = choices[label]
        if c.lr is None:
            log(f"{label}: no learning rate had every search trial end ok ({'; '.join(c.failures)})")
        else:
            edge = f"; still {c.flag} of what was tried" if c.edge else ""
            ties = (f"; {len(c.tied)} rates within the validation noise of the best ({c.noise:.3f}): the one nearest "
                    f"the middle of the range" if len(c.tied) > 1 else "")
            log(f"{label}: lr {c.lr:g} chosen (validation {cfg.select_on} {c.score:.4f} over {len(seeds)} search "
                f"seed(s), {c.trials} trials{ties}{edge})")
    return choices


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
