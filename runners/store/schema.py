"""The run record: one typed, versioned structure, validated when written and when read, migrated from old versions.

A record is the source of truth for every table and plot. Its shape is `Record` below (pydantic, so that it is
validated field by field and its JSON Schema is generated, not written by hand: `python -m runners.record`).
`SCHEMA_VERSION` changes whenever the shape does, and `MIGRATIONS` turns a record of every earlier version into the
current one. Records are strict JSON: a value that is not finite is stored as null, never as a bare NaN.
"""
from __future__ import annotations

import enum
import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runners.core.errors import UserError
from runners.settings.config import RunConfig

SCHEMA_VERSION = 6
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # a real number: never NaN, inf or a string
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)]
Count = Annotated[int, Field(ge=0, strict=True)]


class Status(str, enum.Enum):
    """How a run ended. Only `ok` runs carry metrics and measurements."""

    OK = "ok"
    OOM = "oom"  # out of device memory
    DOES_NOT_FIT = "does-not-fit"  # no micro-batch fits under --memory-cap
    DIVERGED = "diverged"  # the training loss became NaN or infinite
    FAILED = "failed"  # it raised, or its process died
    CANCELLED = "cancelled"  # stopped by Ctrl-C, SIGINT or SIGTERM
    REFUSED = "refused"  # the method cannot work on the model's architecture: refused before anything loaded


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodInfo(_Part):
    label: str  # the spec as typed, NAME[:key=value...]: the row label
    kind: Literal["method", "baseline"] = "method"  # fine-tunes the model, or a classical reference trained apart
    name: str | None = None
    summary: str | None = None
    params: dict[str, Any] | None = None  # the resolved hyperparameters
    # With --tune-lr: the learning-rate range the search searches for this spec, and who set it (the method's
    # declaration, the spec's :lr_range=, --lr-range, or the default a decade either side of the default rate)
    lr_range: tuple[Finite, Finite] | None = None
    lr_range_source: Literal["method", "spec", "--lr-range", "default"] | None = None
    # The modules the method adapted or trained, by what it did to them ("adapted", "trained", "tuned"...), named
    # within a block (`attn.c_attn`, `self_attn.q_proj`) as the model's architecture resolved its roles
    modules: dict[str, list[str]] | None = None


class Metrics(_Part):
    """Test-split metrics of the trained model."""

    accuracy: Share
    macro_f1: Share
    eval_loss: Finite  # mean cross-entropy over the test rows, nats
    majority_baseline: Share  # test accuracy of always predicting train's most common label
    # From the predicted probabilities (measure.scores); None in records made before they were kept, and AUC where
    # fewer than two classes occur in the test rows.
    weighted_f1: Share | None = None
    auc_macro: Share | None = None  # one-vs-rest ROC-AUC, over the classes present in the test labels
    auc_weighted: Share | None = None
    ece: Share | None = None  # expected calibration error, 15 equal-width confidence bins


class Predictions(_Part):
    """A run's test predictions, compact (runners.measure.scores), so that runs compare example by example."""

    rows_sha256: str  # the test rows they are for (the data's content hash of the test split)
    labels: str  # the true labels, one character per row
    predicted: str  # the predicted labels, likewise
    proba: str | None = None  # float16 class probabilities, base64


class CurvePoint(_Part):
    """Validation (and optionally test) metrics at one checkpoint, with the budget spent to reach it."""

    model_config = ConfigDict(extra="allow", frozen=True)  # test_* metrics with --test-each-checkpoint
    fraction: Finite  # share of the budget spent
    steps: Count
    samples: Count
    tokens: Count  # real tokens, padding excluded
    flops: Finite  # FLOPs as counted for the method (runners.measure.flops)
    seconds: Finite  # training wall time so far, s
    train_loss: Finite | None = None  # mean over the last logging window; None before the first read
    val_accuracy: Share
    val_macro_f1: Share
    val_loss: Finite


class Measurements(_Part):
    """What a run cost. Seconds are wall time; memory in MiB (2^20 bytes). The fields after `peak_memory_kind` are
    about training a network: a classical baseline (kind "baseline") has none of them."""

    train_seconds: Finite  # training only: evaluation and compilation excluded (a time budget pays for compiling)
    compile_seconds: Finite = 0.0  # torch.compile's warm-up
    eval_seconds: Finite  # checkpoints' validation and the final test
    samples: Count  # training examples seen (a baseline: the training rows, each fitted once or to convergence)
    samples_per_second: Finite
    peak_memory_mib: Finite
    peak_memory_kind: str  # cuda_max_allocated, or cpu_peak_rss (the run process's own high-water mark)
    cuda_max_reserved_mib: Finite | None = None
    steps: Count | None = None
    tokens: Count | None = None
    flops: Finite | None = None
    tokens_per_second: Finite | None = None
    flops_per_real_token: Finite | None = None
    flop_model: dict[str, Finite] | None = None  # FLOPs per padded token: linear, and per position (quadratic)
    final_train_loss: Finite | None = None
    trainable_params: Count | None = None
    total_params: Count | None = None  # a 4-bit weight counts two values per stored byte
    memory_breakdown: dict[str, Any] | None = None  # weights by dtype, gradients, optimizer state, the rest
    micro_batch: Count | None = None
    accumulation_steps: Count | None = None
    memory_cap_enforced: bool | None = None


class Serving(_Part):
    """What the trained classifier costs to keep and to serve (runners.job.stages.serve), measured after the test."""

    artifact: str  # what is kept: "model" (whole, safetensors), "tensors" (the trained ones), "adapter" (peft's)
    artifact_bytes: Count  # its files' size on disk
    saved_to: str | None = None  # the folder it was kept in (--save-models); None: measured, then deleted
    mergeable: Literal["yes", "no", "n/a"]  # folds into the base within tolerance; n/a: nothing added to fold
    merge_max_abs_diff: Finite | None = None  # largest |merged - unmerged| test logit, where a merge was tried
    merge_tolerance: Finite | None = None  # the bound it was held to (runners.job.stages.serve.MERGE_TOLERANCE)
    merge_note: str | None = None  # why a merge was refused, where it raised
    deployed: Literal["merged", "as trained"]  # the form timed: merged where mergeable
    extra_tokens: Count  # positions added to every request (virtual tokens)
    compute_dtype: str  # what the serving forward computed in (bf16 autocast or fp32)
    latency_ms: Finite  # one text per request: median over the requests timed, after warm-up
    latency_requests: Count
    throughput_per_second: Finite  # texts per second at `throughput_batch`: median over the repeats
    throughput_batch: Count
    throughput_repeats: Count
    peak_memory_mib: Finite | None = None  # CUDA max allocated while serving; None on the CPU (no separate peak)
    device_name: str  # where it was timed
    seconds: Finite  # what the stage took, saving and loading included


class Cost(_Part):
    """What training the run cost: device time, and money where a price per device-hour is known."""

    device_hours: Finite  # training, compilation and evaluation seconds / 3600, on one device
    price_per_hour: Finite | None = None  # USD per device-hour: --price-per-hour, else measure.prices' list price
    price_source: str | None = None  # where that price comes from
    money: Finite | None = None  # device_hours × price_per_hour, USD


_TRAINING = ("steps", "tokens", "flops", "tokens_per_second", "flops_per_real_token", "flop_model",
             "trainable_params", "total_params", "memory_breakdown", "micro_batch", "accumulation_steps",
             "memory_cap_enforced")


class Record(_Part):
    """One run of one method spec with one seed: what was asked, on what, how it ended and what it measured."""

    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    run_id: str
    experiment_id: str
    status: Status
    error: str | None = None  # one line, when the status is not ok
    traceback: str | None = None  # the last frames, when the run raised
    config: RunConfig  # what was asked for (validated by RunConfig itself)
    method: MethodInfo
    model: dict[str, Any]  # the model's identity: name, folder, hub commit, file hashes, shape
    data: dict[str, Any]  # the data's identity: source, files, rows, content hashes, label names
    versions: dict[str, str | None]
    git: dict[str, Any]
    command: str
    timestamp: str | None = None  # UTC, ISO 8601, when the record was written
    metrics: Metrics | None = None
    curve: list[CurvePoint] = []
    measurements: Measurements | None = None
    predictions: Predictions | None = None
    device: dict[str, Any] | None = None
    # The model as the run loaded it: its architecture (kind, blocks, what it scores, head), the attention kernel
    # and activation it ran with, and its pad token id (methods.architecture)
    loaded: dict[str, Any] | None = None
    serving: Serving | None = None  # the serve stage's, where it ran (not with --skip-serving, not in a search)
    cost: Cost | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _complete(self) -> Record:
        if self.schema_ != SCHEMA_VERSION:
            raise ValueError(f"schema {self.schema_} is not the current {SCHEMA_VERSION}")
        if self.status is Status.OK:
            # a learning-rate search trial is scored on validation (its curve) and never tested: no test metrics
            needed = ("measurements", "device") if self.config.search else ("metrics", "measurements", "device")
            missing = [n for n in needed if getattr(self, n) is None]
            if self.method.kind == "method":  # a fine-tuning run also has its curve and training measurements
                missing += [] if self.curve else ["curve"]
                if self.measurements is not None:
                    missing += [f"measurements.{n}" for n in _TRAINING if getattr(self.measurements, n) is None]
            if missing:
                raise ValueError(f"an ok record lacks {', '.join(missing)}")
        elif not self.error:
            raise ValueError(f"a {self.status.value} record must say why (error)")
        if self.config.search and (self.metrics is not None or self.predictions is not None):
            raise ValueError("a search trial has test metrics: the test split is never evaluated in a search")
        return self

    @property
    def label(self) -> str:
        return self.method.label

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_json(self) -> str:
        return json.dumps(_finite(self.model_dump(mode="json", by_alias=True)), indent=2, allow_nan=False) + "\n"


class RecordError(ValueError):
    """A file that is not a readable, complete record of this or an earlier schema version; the message says why."""


def validate(data: dict) -> Record:
    """A record from a dict of the current version (e.g. one the worker built)."""
    try:
        return Record.model_validate(_finite(data))
    except ValidationError as e:
        raise RecordError(_one_line(e)) from None
    except (UserError, TypeError) as e:  # RunConfig's own checks: a bad value, an unknown field
        raise RecordError(f"config: {e}") from None


def json_schema() -> dict:
    """The JSON Schema of the current record version, for tools outside this lab."""
    schema = Record.model_json_schema(by_alias=True)
    schema["$id"] = f"peft-lab/record/v{SCHEMA_VERSION}"
    return schema


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _one_line(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
