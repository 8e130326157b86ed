"""The typed, validated configuration of one run (one method spec x one seed).

One validation system: pydantic checks every field when a config is made, from the constraints its type declares
(`AtLeast1`, `Fraction01`...) and the validators below, and a mistake becomes one line naming the option
(`--batch-size must be >= 1, got 0`) from the field's `check` text. The same config is the one a record holds, so a
record's config is checked by the same rules.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

from runners.core.errors import UserError
from runners.settings.budget import Budget, parse_size
from runners.settings.speedups import LOOP, SINCE, SPEEDUPS, parse_ablate

REQUIRED = dataclasses.MISSING  # a setting every run names itself (the method, the seed)
DEVICES = ("auto", "cpu", "cuda")


def setting(default: Any, help: str, *, flag: bool = True, parse: Callable[[str], Any] | None = None,
            choices: tuple | None = None, resolved: bool = False, check: str | None = None) -> Any:
    """A run setting: its default and a one-line help, from which runners.cli derives its `--option`.
    flag: whether it is an option (method and seed come from the lists of --methods and --seeds);
    parse: turns the option's text into the value (a tuple field's, e.g. "1/8,1/2,1");
    resolved: the option's text is resolved with the data source (runners.cli.run_settings: the dataset's name,
    its default max length), so the option is unset by default and `default` is what the default dataset gives;
    check: what a valid value is, for the one-line error when the field's type constraint refuses one."""
    meta = {"help": help, "flag": flag, "parse": parse, "choices": choices, "resolved": resolved, "check": check}
    return dataclasses.field(default=default, metadata=meta)


def parse_fractions(text: str) -> tuple[float, ...]:
    """`1/8,0.25,1` to the sorted fractions (0.125, 0.25, 1.0)."""
    try:
        return tuple(sorted({float(Fraction(x.strip())) for x in text.split(",") if x.strip()}))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--checkpoints must be comma-separated fractions like 1/4,0.5,1, got {text!r}") from None


def parse_seeds(text: str) -> tuple[int, ...]:
    """`1000,1001` to (1000, 1001): distinct integers >= 0, in the order given."""
    try:
        values = tuple(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise UserError(f"--search-seeds must be comma-separated integers >= 0, got {text!r}")
    return values


def parse_range(text: str) -> tuple[float, ...]:
    """`1e-5,1e-3` (or `1e-5:1e-3`) to (1e-5, 1e-3)."""
    try:
        values = tuple(float(x) for x in text.replace(":", ",").split(",") if x.strip())
    except ValueError:
        values = ()
    if len(values) != 2 or not 0 < values[0] < values[1]:
        raise UserError(f"--lr-range must be LO,HI with 0 < LO < HI, e.g. 1e-5,1e-3; got {text!r}")
    return values


SELECT_ON = ("accuracy", "macro-f1")
# What the fields' types constrain (pydantic), each refusal said with the field's `check` text
AtLeast1 = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RunConfig:
    method: str = setting(REQUIRED, "the spec as typed, NAME[:key=value...]; also the table's row label", flag=False)
    seed: int = setting(REQUIRED, "model init, dropout and batch order; the data split uses split_seed", flag=False)
    dataset: str = setting("tweets", "built in (tweets, imdb), a hub dataset id, or with --data-dir any name: it "
                                     "titles the tables and names the results folder (default: tweets; with "
                                     "--data-dir, the folder's name)", resolved=True)
    data_dir: str | None = setting(None, "read DIR/train.* and DIR/test.* (parquet, csv, tsv or jsonl) instead "
                                         "of the hub")
    text_column: str = setting("text", "the column holding the texts")
    label_column: str = setting("label", "the column holding the labels (integers 0..K-1 or strings)")
    splits: tuple[str, ...] | None = setting(None, "a hub dataset's TRAIN,TEST split names (default train,test; "
                                                   "without a test split, one is held out like validation)",
                                             resolved=True)
    data_revision: str | None = setting(None, "hub dataset revision to pin (branch, tag or commit); the record "
                                              "stores the commit read")
    model: str = setting("gpt2", "hub id or local folder with config.json, tokenizer files and *.safetensors")
    revision: str | None = setting(None, "hub model revision to pin (branch, tag or commit); the record stores "
                                         "the commit read")
    budget: str = setting("1epoch", "per run: Nepochs, Nsteps, Nsamples, a time (90s, 5m, 1h), Mtokens or flops; "
                                    "several, comma-separated (30s,2m,8m), run the whole comparison at each")
    batch_size: AtLeast1 = setting(32, "training batch size", check=">= 1")
    # Inference keeps no activations for backward, so it fits a larger batch.
    eval_batch_size: AtLeast1 = setting(128, "evaluation batch size", check=">= 1")
    lr: Positive | None = setting(None, "every method's learning rate, in place of its default (and of a spec's "
                                        ":lr=)", check="> 0")
    # The learning-rate search (runners.planning.search): its trials are runs like any other, marked `search`.
    tune_lr: Annotated[int, Field(ge=2)] | None = setting(
        None, "search N learning rates per method, log-spaced over its declared range (--list: lr_range), each trial "
              "at the full budget and scored on validation over --search-seeds; the best rate then runs the --seeds",
        check=">= 2 (the number of learning rates searched)")
    search_seeds: tuple[int, ...] = setting((1000,), "seeds of the --tune-lr trials; never among --seeds",
                                            parse=parse_seeds)
    select_on: Literal["accuracy", "macro-f1"] = setting("accuracy", "the validation metric --tune-lr selects on",
                                                         choices=SELECT_ON, check="accuracy or macro-f1")
    lr_range: tuple[float, ...] | None = setting(None, "LO,HI: the range --tune-lr searches for every method (a "
                                                       "spec's :lr_range=LO+HI sets one's)", parse=parse_range)
    search: bool = setting(False, "a --tune-lr trial: scored on validation only, never tested", flag=False)
    max_length: AtLeast1 = setting(128, "tokens per example after truncation (default: the dataset's, 128 tweets, "
                                        "512 imdb; never above the model's positions)", resolved=True, check=">= 1")
    train_limit: AtLeast1 | None = setting(None, "seeded stratified subset of N training rows", check=">= 1")
    eval_limit: AtLeast1 | None = setting(None, "at most N validation and N test rows (seeded, stratified)",
                                          check=">= 1")
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = setting(
        0.05, "share of train held out (seeded, stratified) for validation", check="in (0, 1)")
    split_seed: Annotated[int, Field(ge=0, lt=2**32)] = setting(  # scikit-learn's random_state range
        0, "seed of the data split: held-out validation (and test, where the data has none) and the --train-limit / "
           "--eval-limit subsets", check="in [0, 2**32)")
    warmup: Annotated[float, Field(ge=0, lt=1)] = setting(
        0.06, "share of the budget spent warming the learning rate up from 0", check="in [0, 1)")
    max_grad_norm: Annotated[float, Field(ge=0)] = setting(
        1.0, "clip the global gradient norm at this value; 0 disables clipping", check=">= 0 (0 disables clipping)")
    checkpoints: tuple[float, ...] = setting((0.125, 0.25, 0.5, 1.0), "budget fractions at which to evaluate "
                                             "validation, e.g. 1/8,1/4,1/2,1", parse=parse_fractions)
    test_each_checkpoint: bool = setting(False, "also evaluate the test split at each checkpoint")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "where runs train: cpu, cuda, or auto for CUDA when "
                                                             "present", choices=DEVICES, check="auto, cpu or cuda")
    memory_cap: str | None = setting(None, "e.g. 2GiB: every method gets this much GPU memory (enforced on CUDA "
                                           "only, where the micro-batch is fitted under it)")
    # How the loop runs, not what is compared: runs differing only here share an experiment (and a table).
    ablate: tuple[str, ...] = setting((), "turn these speed-ups of the loop off (comma-separated, or 'all'), to "
                                          f"measure them: {', '.join(SPEEDUPS)}", parse=parse_ablate)
    compile: bool = setting(False, "torch.compile each model; the compile time is recorded apart from training")
    # Which revision of the loop trained the run (runners.settings.speedups.LOOP): a revision changes what a default run
    # computes, so runs of two revisions never share an id or a table.
    loop: int = setting(LOOP, "the training loop's revision (runners.settings.speedups.LOOP)", flag=False)

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        Budget.parse(value)  # a bad budget says what is wrong with it (UserError)
        return value

    @field_validator("checkpoints")
    @classmethod
    def _checkpoints(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 < c <= 1 for c in value):
            raise UserError(f"--checkpoints must be fractions in (0, 1], got {value}")
        return value

    @field_validator("memory_cap")
    @classmethod
    def _memory_cap(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    @field_validator("ablate")
    @classmethod
    def _ablate(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:
            parse_ablate(",".join(value))
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, data: Any, handler: Callable) -> RunConfig:
        """A refused value as one line naming its option and what it must be (UserError), like every user mistake."""
        try:
            return handler(data)
        except ValidationError as e:
            raise UserError(_said(e)) from None

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The inverse of `to_dict` (JSON turns tuples into lists)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def speedup(self, name: str) -> bool:
        """Whether the loop's speed-up `name` (settings.speedups) is on: not ablated, and part of the run's loop."""
        return name not in self.ablate and self.loop >= SINCE.get(name, 1)

    def bf16(self, device) -> bool:
        """Whether the bf16 speed-up is on for a run on `device` (loop 1 autocast on CUDA only, not on the CPU);
        whether the device computes bf16 in hardware is runners.measure.environment.precision's to decide."""
        return self.speedup("bf16") and (self.loop >= 2 or getattr(device, "type", device) == "cuda")

    @property
    def name(self) -> str:
        """How the lines a user reads name the run: `lora seed 0`, `lora seed 0 (lr 0.001)` where its rate was
        searched, `lora lr 0.001 search seed 1000` for a search trial."""
        if self.search:
            return f"{self.method} lr {self.lr:g} search seed {self.seed}"
        return f"{self.method} seed {self.seed}" + (f" (lr {self.lr:g})" if self.tune_lr and self.lr else "")

    @property
    def attention(self) -> str:
        """transformers' attn_implementation for this run."""
        return "sdpa" if self.speedup("sdpa") else "eager"

    def key(self) -> dict:
        """What identifies the run: the config, less the fields added later while at their defaults, so that
        the ids of runs recorded before those fields existed still hold."""
        d = self.to_dict()
        for name, default in _LATER_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    def experiment(self) -> dict:
        """Everything but the method, the seed and how the loop ran: runs sharing it belong in one table."""
        d = self.key()
        for name in ("method", "seed", "ablate", "compile", "search"):  # a search trial belongs to its experiment
            d.pop(name, None)
        if self.tune_lr is not None:  # each method's rate is the search's outcome, not a setting of the experiment
            d.pop("lr", None)
        return d


_LATER_FIELDS = {"ablate": (), "compile": False, "text_column": "text", "label_column": "label", "splits": None,
                 "data_revision": None, "revision": None, "tune_lr": None, "search_seeds": (1000,),
                 "select_on": "accuracy", "lr_range": None, "search": False, "loop": 1}


def _said(e: ValidationError) -> str:
    """The first refusal of a ValidationError, as the option's one line."""
    error = e.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else ""
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    if name not in fields:  # not a setting: an unknown or a missing key (a record's config of another version)
        return f"{name or 'config'}: {error['msg']}"
    value = error.get("input")
    check = fields[name].metadata.get("check") or error["msg"].lower().removeprefix("input should be ")
    shown = repr(value) if isinstance(value, str) else value
    return f"--{name.replace('_', '-')} must be {check}, got {shown}"


def stable_hash(obj: object, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]
