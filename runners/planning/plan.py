"""The plan of a command: every run it asks for (entry × seed), each a self-contained job for a worker, with the runs
that already have an `ok` record set aside. Building it trains nothing; an executor runs it
(runners.execute.executor)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runners.job.spec import Job, Shared
from runners.settings.config import RunConfig, stable_hash
from runners.store.context import git_state
from runners.store.records import read_record, run_id

if TYPE_CHECKING:
    from runners.data.splits import Splits


def common_job(model: dict, splits: Splits, pad_id: int, tokens: Path, command: str, quiet: bool,
               **extra: Any) -> Shared:
    """What every job of one command shares, resolved once by the parent: the model and the tokenized data, their
    identities, and the command's context. `model` is `runners.data.models.resolve_model`'s identity; `extra` adds
    fields such as the texts file that baselines read, the plugins a worker imports or the serve stage's settings."""
    majority = int(splits.train.label.mode()[0])
    return Shared(tokens=str(tokens), model=model, data={**splits.identity, "label_names": list(splits.label_names)},
                  num_labels=splits.num_labels, pad_id=pad_id,
                  majority_baseline=float((splits.test.label == majority).mean()), git=git_state(),
                  command=command, quiet=quiet, **extra)


def job_for(common: Shared, cfg: RunConfig, folder: Path, **extra: Any) -> Job:
    """One run's job: its config, its ids (hashed from the config and the model's and data's identity) and where its
    record goes; `extra` adds fields such as `stages`."""
    identity = {"model": common.model.weights_sha256, "model_files": common.model.files_sha256,
                "data": common.data["content_sha256"]}
    rid = run_id(cfg.method, cfg.seed, stable_hash({**cfg.key(), **identity}))
    experiment_id = stable_hash({**cfg.experiment(), **identity})
    return Job(**dict(common), config=cfg, run_id=rid, experiment_id=experiment_id,
               record_path=str(Path(folder) / f"{rid}.json"), **extra)


@dataclass(frozen=True)
class Entry:
    """A row of the comparison: a spec's label and the worker stages that run it (a fine-tuning method's train and
    evaluate, or a baseline's own): the runner dispatches on what the entry declares, never on its name."""

    label: str
    stages: tuple[str, ...]
    settings: dict = field(default_factory=dict, hash=False)  # its own settings over the command's (a tuned lr)


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)  # to run, in order
    skipped: list[Job] = field(default_factory=list)  # an ok record exists (and --rerun was not given)
    experiment_id: str | None = None  # the experiment these runs belong to (one table)


def make_plan(entries: Sequence[Entry], seeds: Sequence[int], settings: dict, common: Shared, folder: Path,
              rerun: bool = False) -> Plan:
    """Every entry × seed as a job, in order; a run whose `ok` record exists is skipped unless `rerun`."""
    plan = Plan()
    for entry in entries:
        for seed in seeds:
            job = job_for(common, RunConfig(method=entry.label, seed=seed, **{**settings, **entry.settings}), folder,
                          stages=entry.stages)
            plan.experiment_id = job.experiment_id
            existing = read_record(Path(job.record_path))
            (plan.skipped if existing and existing.ok and not rerun else plan.jobs).append(job)
    return plan
