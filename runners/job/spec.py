"""A job: one run as the plan hands it to an executor and the executor to the run's own process. Typed and validated
when it is made (pydantic, like the record), so that this file is the one place that says what a job holds: the
run's config and ids, where its record goes, the stages it runs, and what the command resolved once for all its
runs (the model folder, the tokenized data, their identities, the serve stage's settings)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runners.settings.config import RunConfig
from runners.store import schema
from runners.store.context import versions
from runners.store.schema import Status

DEFAULT_STAGES = ("train", "evaluate", "serve")  # what a run does unless its job lists its own (runners.job.stages)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelIdentity(_Part):
    """The model a command resolved (runners.data.models.resolve_model): what was asked for, where it is, and the
    hashes that make it exactly that model; stored whole as every record's `model`."""

    model_config = ConfigDict(extra="allow", frozen=True)  # a later identity field travels to the record as it is
    name: str
    path: str  # the local folder holding config.json, the tokenizer and the weights
    revision: str | None = None  # the hub revision asked for
    commit: str | None = None  # the hub commit read (None for a local folder)
    weights_sha256: dict[str, str]
    files_sha256: dict[str, str] = {}  # config and tokenizer files: a change to either alone is another model
    use_safetensors: bool = True  # False only for a local pickle checkpoint the user allowed (--allow-pickle)
    n_positions: int | None = None
    architecture: dict[str, Any] = {}


class Serving(_Part):
    """What the serve stage does (runners.job.stages.serve): these change no result, so no run id depends on them."""

    skip: bool = False  # --skip-serving
    price_per_hour: float | None = Field(None, gt=0)  # --price-per-hour, USD
    save_models: str | None = None  # --save-models DIR (absolute)


class Shared(_Part):
    """What every job of one command shares, resolved once by the command."""

    tokens: str  # the tokenized splits (runners.data.batches), a file in the cache
    model: ModelIdentity
    data: dict[str, Any]  # the data's identity (runners.data.splits), stored whole as every record's `data`
    num_labels: int = Field(ge=2)
    pad_id: int
    majority_baseline: float = Field(ge=0, le=1)  # test accuracy of always predicting train's most common class
    git: dict[str, Any]
    command: str
    quiet: bool = False  # no progress bar in the run's process
    plugins: tuple[str, ...] = ()  # the command's --plugin modules, as the run's process imports them again
    serving: Serving = Serving()
    texts: str | None = None  # the texts and labels of train and test, for the runs that read texts (baselines)


class Job(Shared):
    """One run: a method spec (or a baseline) with one seed, and where its record goes."""

    config: RunConfig
    run_id: str
    experiment_id: str
    record_path: str
    stages: tuple[str, ...] = DEFAULT_STAGES
    placement: dict[str, Any] = {}  # where it runs, filled by the executor (its kind, slot, host, threads, node)

    @property
    def name(self) -> str:
        """How the lines a user reads name the run (RunConfig.name)."""
        return self.config.name

    def with_(self, **changes: Any) -> Job:
        """This job with `changes`, validated again."""
        return Job.model_validate({**self.model_dump(), **changes})

    def base_record(self, status: Status = Status.OK, error: str | None = None) -> dict:
        """What every record of this run holds whatever became of it: its identity, config and context."""
        return {"schema": schema.SCHEMA_VERSION, "run_id": self.run_id, "experiment_id": self.experiment_id,
                "status": Status(status).value, "error": error, "config": self.config.to_dict(),
                "method": {"label": self.config.method}, "model": self.model.model_dump(), "data": self.data,
                "versions": versions(), "git": self.git, "command": self.command}

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls.model_validate_json(text)
