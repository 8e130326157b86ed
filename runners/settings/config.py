"""The typed, validated configuration of one run (one method spec x one seed)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from runners.core.errors import UserError
from runners.settings.budget import Budget
from runners.settings.speedups import LOOP, SINCE, SPEEDUPS, parse_ablate

REQUIRED = dataclasses.MISSING  # a setting every run names itself (the method, the seed)
DEVICES = ("auto", "cpu", "cuda")


def setting(default: Any, help: str, *, flag: bool = True, parse: Callable[[str], Any] | None = None,
            choices: tuple | None = None, resolved: bool = False) -> Any:
    """A run setting: its default and a one-line help, from which runners.cli derives its `--option`.
    flag: whether it is an option (method and seed come from the lists of --methods and --seeds);
    parse: turns the option's text into the value (a tuple field's, e.g. "1/8,1/2,1");
    resolved: the option's text is resolved with the data source (runners.cli.run_settings: the dataset's name,
    its default max length), so the option is unset by default and `default` is what the default dataset gives."""
    meta = {"help": help, "flag": flag, "parse": parse, "choices": choices, "resolved": resolved}
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


@dataclass(frozen=True)
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
    batch_size: int = setting(32, "training batch size")
    # Inference keeps no activations for backward, so it fits a larger batch.
    eval_batch_size: int = setting(128, "evaluation batch size")
    lr: float | None = setting(None, "every method's learning rate, in place of its default (and of a spec's :lr=)")
    # The learning-rate search (runners.planning.search): its trials are runs like any other, marked `search`.
    tune_lr: int | None = setting(None, "search N learning rates per method, log-spaced over its declared range "
                                        "(--list: lr_range), each trial at the full budget and scored on validation "
                                        "over --search-seeds; the best rate then runs the --seeds")
    search_seeds: tuple[int, ...] = setting((1000,), "seeds of the --tune-lr trials; never among --seeds",
                                            parse=parse_seeds)
    select_on: str = setting("accuracy", "the validation metric --tune-lr selects on", choices=SELECT_ON)
    lr_range: tuple[float, ...] | None = setting(None, "LO,HI: the range --tune-lr searches for every method (a "
                                                       "spec's :lr_range=LO+HI sets one's)", parse=parse_range)
    search: bool = setting(False, "a --tune-lr trial: scored on validation only, never tested", flag=False)
    max_length: int = setting(128, "tokens per example after truncation (default: the dataset's, 128 tweets, 512 "
                                   "imdb; never above the model's positions)", resolved=True)
    train_limit: int | None = setting(None, "seeded stratified subset of N training rows")
    eval_limit: int | None = setting(None, "at most N validation and N test rows (seeded, stratified)")
    val_fraction: float = setting(0.05, "share of train held out (seeded, stratified) for validation")
    split_seed: int = setting(0, "seed of the data split: held-out validation (and test, where the data has "
                                 "none) and the --train-limit / --eval-limit subsets")
    warmup: float = setting(0.06, "share of the budget spent warming the learning rate up from 0")
    max_grad_norm: float = setting(1.0, "clip the global gradient norm at this value; 0 disables clipping")
    checkpoints: tuple[float, ...] = setting((0.125, 0.25, 0.5, 1.0), "budget fractions at which to evaluate "
                                             "validation, e.g. 1/8,1/4,1/2,1", parse=parse_fractions)
    test_each_checkpoint: bool = setting(False, "also evaluate the test split at each checkpoint")
    device: str = setting("auto", "where runs train: cpu, cuda, or auto for CUDA when present", choices=DEVICES)
    memory_cap: str | None = setting(None, "e.g. 2GiB: every method gets this much GPU memory (enforced on CUDA "
                                           "only, where the micro-batch is fitted under it)")
    # How the loop runs, not what is compared: runs differing only here share an experiment (and a table).
    ablate: tuple[str, ...] = setting((), "turn these speed-ups of the loop off (comma-separated, or 'all'), to "
                                          f"measure them: {', '.join(SPEEDUPS)}", parse=parse_ablate)
    compile: bool = setting(False, "torch.compile each model; the compile time is recorded apart from training")
    # Which revision of the loop trained the run (runners.settings.speedups.LOOP): a revision changes what a default run
    # computes, so runs of two revisions never share an id or a table.
    loop: int = setting(LOOP, "the training loop's revision (runners.settings.speedups.LOOP)", flag=False)

    def __post_init__(self) -> None:
        Budget.parse(self.budget)
        positive = {"batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size,
                    "max_length": self.max_length}
        for name, value in {**positive, "train_limit": self.train_limit, "eval_limit": self.eval_limit}.items():
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be > 0, got {self.lr}")
        if self.tune_lr is not None and self.tune_lr < 2:
            raise UserError(f"--tune-lr must be >= 2 (the number of learning rates searched), got {self.tune_lr}")
        if self.select_on not in SELECT_ON:
            raise UserError(f"--select-on must be accuracy or macro-f1, got {self.select_on!r}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 <= self.split_seed < 2**32:  # scikit-learn's random_state range
            raise UserError(f"--split-seed must be in [0, 2**32), got {self.split_seed}")
        if not 0 <= self.warmup < 1:
            raise UserError(f"--warmup must be in [0, 1), got {self.warmup}")
        if not self.max_grad_norm >= 0:
            raise UserError(f"--max-grad-norm must be >= 0 (0 disables clipping), got {self.max_grad_norm}")
        if not self.checkpoints or any(not 0 < c <= 1 for c in self.checkpoints):
            raise UserError(f"--checkpoints must be fractions in (0, 1], got {self.checkpoints}")
        if self.memory_cap is not None:
            from runners.settings.budget import parse_size
            parse_size(self.memory_cap)
        if self.ablate:
            parse_ablate(",".join(self.ablate))
        if self.device not in DEVICES:
            raise UserError(f"--device must be auto, cpu or cuda, got {self.device!r}")

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


def stable_hash(obj: object, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]
