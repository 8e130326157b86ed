"""The stages a run goes through (train, evaluate, serve, and any added after them), each adding its parts to the
record. A stage is a function registered under its name (`@stage("evaluate")`), one module of this folder each; the
registry finds them by the lab's one rule, a scan of this folder (methods.registry.Registry)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from methods.registry import Registry
from runners.job.spec import DEFAULT_STAGES, Job
from runners.measure import environment as env

if TYPE_CHECKING:
    import torch
    from torch import nn

    from methods import Method, ModelContext
    from runners.data.batches import TokenizedSplit
    from runners.job.loop import TrainResult
    from runners.settings.config import RunConfig

# What a run does unless its job lists its own `stages`: a post-training measurement is a stage appended here.
DEFAULT = DEFAULT_STAGES  # serve: runners.job.stages.serve
# What a learning-rate search trial does (runners.planning.search): train, then score on validation; never tested.
SEARCH = ("train", "validate")


@dataclass
class Context:
    """What a stage works on. The worker sets the first four fields; a stage sets what it made for the stages after
    it (the train stage: `method`, `model_context`, `model` and `trained`, which evaluation and any post-training
    measurement read) and notes its phases' memory in `high_water`."""

    job: Job
    cfg: RunConfig
    device: torch.device
    data: dict[str, TokenizedSplit]
    parts: dict = field(default_factory=dict)  # the record's results from the stages so far, merged
    method: Method | None = None
    model_context: ModelContext | None = None
    model: nn.Module | None = None
    trained: TrainResult | None = None
    # The run's memory high-water mark (MiB) after each phase so far (loaded, flops_probe, trained, tested): the phase
    # where it rises is the one that set the run's peak (runners.measure.memory.breakdown)
    high_water: dict[str, float] = field(default_factory=dict)


class Stage(Protocol):
    def __call__(self, ctx: Context) -> dict:
        """Do the stage's work and return the record parts it adds (`metrics`, `measurements`...). A part that is a
        dict is merged key by key into what earlier stages gave under that key, so a later stage adds measurements
        or updates one (testing adds its seconds to `eval_seconds`). A stage that raises ends the run: the worker
        records it as failed (or oom, diverged...) with the error."""


STAGES: Registry[Stage] = Registry("stage", __name__)


def stage(name: str):
    """Function decorator: `@stage("evaluate")` registers a stage under the name a job's `stages` lists it by."""
    return STAGES.register(name)


def run_stages(ctx: Context, names: Sequence[str]) -> dict:
    """Run the named stages in order on `ctx`; return the record parts they made, merged."""
    run = [STAGES.get(name) for name in names]  # an unknown stage fails here, before any: not after minutes of training
    for fn in run:
        for key, part in fn(ctx).items():
            before = ctx.parts.get(key)
            ctx.parts[key] = {**before, **part} if isinstance(before, dict) and isinstance(part, dict) else part
    return ctx.parts


def peak_memory_part(device: torch.device) -> dict:
    """The run's peak memory so far, under the names the record's measurements give it."""
    peak = env.peak_memory(device)
    return {"peak_memory_mib": peak.pop("peak_mib"), "peak_memory_kind": peak.pop("kind"), **peak}
