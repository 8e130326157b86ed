"""The stages a run goes through (train, evaluate, serve, and any added after them), each adding its parts to the
record."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from runners import environment as env

if TYPE_CHECKING:
    import torch
    from torch import nn

    from methods import Method, ModelContext
    from runners.batches import TokenizedSplit
    from runners.config import RunConfig
    from runners.train import TrainResult


@dataclass
class Context:
    """What a stage works on. The worker sets the first four fields; a stage sets what it made for the stages after
    it (the train stage: `method`, `model_context`, `model` and `trained`, which evaluation and any post-training
    measurement read)."""

    job: dict
    cfg: RunConfig
    device: torch.device
    data: dict[str, TokenizedSplit]
    parts: dict = field(default_factory=dict)  # the record's results from the stages so far, merged
    method: Method | None = None
    model_context: ModelContext | None = None
    model: nn.Module | None = None
    trained: TrainResult | None = None


class Stage(Protocol):
    def __call__(self, ctx: Context) -> dict:
        """Do the stage's work and return the record parts it adds (`metrics`, `measurements`...). A part that is a
        dict is merged key by key into what earlier stages gave under that key, so a later stage adds measurements
        or updates one (testing adds its seconds to `eval_seconds`). A stage that raises ends the run: the worker
        records it as failed (or oom, diverged...) with the error."""


STAGES: dict[str, Stage] = {}
# What a run does unless its job lists its own `stages`: a post-training measurement is a stage appended here.
DEFAULT = ("train", "evaluate", "serve")  # serve: runners.serving
# What a learning-rate search trial does (runners.tune): train, then score on validation; never tested.
SEARCH = ("train", "validate")


def stage(name: str):
    """Function decorator: `@stage("evaluate")` registers a stage under the name a job's `stages` lists it by."""

    def register(fn: Stage) -> Stage:
        if name in STAGES:
            raise ValueError(f"stage {name!r} is already registered by {STAGES[name].__qualname__}")
        STAGES[name] = fn
        return fn

    return register


def run_stages(ctx: Context, names: Sequence[str]) -> dict:
    """Run the named stages in order on `ctx`; return the record parts they made, merged."""
    unknown = [n for n in names if n not in STAGES]
    if unknown:  # before any stage: not after minutes of training
        raise ValueError(f"unknown stage {', '.join(map(repr, unknown))}; registered: {', '.join(STAGES)}")
    for name in names:
        for key, part in STAGES[name](ctx).items():
            before = ctx.parts.get(key)
            ctx.parts[key] = {**before, **part} if isinstance(before, dict) and isinstance(part, dict) else part
    return ctx.parts


def peak_memory_part(device: torch.device) -> dict:
    """The run's peak memory so far, under the names the record's measurements give it."""
    peak = env.peak_memory(device)
    return {"peak_memory_mib": peak.pop("peak_mib"), "peak_memory_kind": peak.pop("kind"), **peak}
