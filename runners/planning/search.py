"""The learning-rate search (`--tune-lr N`): every method at its own best rate, under the comparison's budget.

For each method spec, N rates log-spaced over the range the method declares (`lr_range`; a spec's `:lr_range=` or
`--lr-range` overrides it). Each trial is an ordinary run, marked `search` in its config: it trains with the
comparison's whole budget (the schedule follows the share of budget spent, and no trial is stopped early), on the
search seeds (never the reported ones), and is scored on the validation split alone: its job's stages are
`stages.SEARCH`, and the worker does not load the test split. When the best rate is at an end of the grid, the grid
is extended one step past it (the grid's spacing, at most `MAX_STEP`), up to `EXTEND_LIMIT` steps a side, so that
the optimum is bracketed; a best still at an end is flagged. The chosen rate then runs the reported seeds, which give
the test numbers.

The selection rule, `choose`, lives with the analysis (runners.analysis.selection): the command uses it to pick the
rate, and the tables to show it, from the same records.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runners.analysis.selection import Choice, choose
from runners.job import stages
from runners.job.spec import Job, Shared
from runners.settings.config import RunConfig
from runners.settings.search import EXTEND_LIMIT, lr_range, rounded
from runners.store.records import read_record, write_record
from runners.store.schema import Record, Status

MAX_STEP = 10.0  # an extension's step: the grid's spacing, but never more than a decade (N=2 spans the range)
# A trial that ended so would end so again at that rate and seed: resume does not run it again, and the selection
# counts it as a rate that does not work (divergence brackets the optimum from above as well as a low score does).
SETTLED = (Status.OK, Status.DIVERGED, Status.OOM, Status.DOES_NOT_FIT)
if TYPE_CHECKING:
    pass



def grid(lo: float, hi: float, n: int) -> list[float]:
    """`n` rates log-spaced from `lo` to `hi`, both included, each to three significant digits."""
    if n == 1:
        return [rounded(math.sqrt(lo * hi))]
    return [rounded(lo * (hi / lo) ** (i / (n - 1))) for i in range(n)]


def step(lo: float, hi: float, n: int) -> float:
    """The ratio between neighbouring rates of the grid: one step of an extension past its end."""
    return (hi / lo) ** (1 / max(n - 1, 1))


def extension(choice: Choice, lo: float, hi: float, n: int) -> float | None:
    """The next rate to try past the end where the best sits, or None when it is bracketed or the limit is hit."""
    if choice.edge is None or choice.lr is None:
        return None
    ratio = min(step(lo, hi, n), MAX_STEP)
    lo, hi = rounded(lo), rounded(hi)  # the grid's own ends, as rounded: not an extension
    beyond = [lr for lr in choice.scores if (lr < lo * 0.999 if choice.edge == "low" else lr > hi * 1.001)]
    if len(beyond) >= EXTEND_LIMIT:
        return None
    return rounded(choice.lr / ratio if choice.edge == "low" else choice.lr * ratio)


def trial_job(common: Shared, label: str, lr: float, seed: int, settings: dict, folder: Path) -> Job:
    """One search trial's job: the comparison's settings at rate `lr` on search seed `seed`, train-and-validate."""
    from runners.planning.plan import job_for

    cfg = RunConfig(method=label, seed=seed, **{**settings, "lr": lr, "search": True})
    return job_for(common, cfg, folder, stages=stages.SEARCH)


def unsearched_record(job: Job, choice: Choice) -> Record:
    """The record of a reported run that cannot train: its spec's search found no rate at which every search seed
    ended ok. Written, so that the table shows the row and why, and the command exits non-zero."""
    from runners.store.context import now

    error = f"no learning rate had every search trial end ok: {'; '.join(choice.failures) or 'no trial ran'}"
    return write_record(Path(job.record_path), {**job.base_record(Status.FAILED, error), "timestamp": now()})


def unsettled_trials(labels: Sequence[str], settings: dict, common: Shared, folder: Path, rerun: bool = False) -> int:
    """How many trials of the first grid are still to run (for the estimate before any of them trains)."""
    cfg = RunConfig(method=labels[0], seed=0, **settings)
    jobs = [trial_job(common, label, lr, seed, settings, folder) for label in labels
            for lr in grid(*lr_range(label, cfg), cfg.tune_lr) for seed in cfg.search_seeds]
    return sum(rerun or not _settled(job) for job in jobs)


def _spec(record: Record) -> str:
    return record.config.method


def _settled(job: Job) -> bool:
    record = read_record(Path(job.record_path))
    return record is not None and record.status in SETTLED


def search(labels: Sequence[str], settings: dict, common: Shared, folder: Path,
           execute: Callable[[list[Job]], None], rerun: bool = False,
           log: Callable[[str], None] = print) -> dict[str, Choice]:
    """Search each spec's rate: the grid, then extensions past an edge best, round by round until every spec is
    bracketed or at its limit. `execute(jobs)` runs trials; a trial whose record is settled is not run again
    (unless `rerun`). Returns each spec's choice."""
    cfg = RunConfig(method=labels[0], seed=0, **settings)
    n, seeds = cfg.tune_lr, cfg.search_seeds
    ranges = {label: lr_range(label, cfg) for label in labels}
    rates = {label: grid(*ranges[label], n) for label in labels}
    jobs: dict[str, list[Job]] = {label: [] for label in labels}  # each spec's trials so far
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
            jobs[label] += [job for job in new if job.config.method == label]
            records = [r for job in jobs[label] if (r := read_record(Path(job.record_path))) is not None]
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


