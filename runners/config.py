"""The typed, validated configuration of one run (one method spec x one seed)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from runners.budget import Budget
from runners.errors import UserError


@dataclass(frozen=True)
class RunConfig:
    method: str  # the spec as typed, NAME[:key=value...]; also the table's row label
    seed: int  # model init, dropout and batch order; the data split uses `split_seed`
    dataset: str = "tweets"  # a built-in name, a hub dataset id, or any name for a local data_dir
    data_dir: str | None = None  # None: the hub dataset
    text_column: str = "text"
    label_column: str = "label"
    splits: tuple[str, ...] | None = None  # a hub dataset's train and test split names; None: train, test
    data_revision: str | None = None  # hub dataset revision asked for (the commit read is in the record's data)
    model: str = "gpt2"  # hub id or local folder
    revision: str | None = None  # hub model revision asked for (the commit read is in the record's model)
    budget: str = "1epoch"
    batch_size: int = 32
    eval_batch_size: int = 128  # inference keeps no activations for backward, so it fits a larger batch
    lr: float | None = None  # None: the method's own default
    max_length: int = 128  # tokens per example after truncation
    train_limit: int | None = None
    eval_limit: int | None = None
    val_fraction: float = 0.05  # share of train held out for validation during training
    split_seed: int = 0
    warmup: float = 0.06  # share of the budget spent warming the learning rate up from 0
    max_grad_norm: float = 1.0  # clip the global gradient norm at this value; 0 disables
    checkpoints: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)  # budget fractions at which to evaluate validation
    test_each_checkpoint: bool = False  # also evaluate the test split at every checkpoint
    device: str = "auto"
    memory_cap: str | None = None  # e.g. "2GiB": enforced on CUDA, where the micro-batch is fitted under it
    # How the loop runs, not what is compared: runs differing only here share an experiment (and a table).
    ablate: tuple[str, ...] = ()  # speed-ups turned off (runners.speedups), to measure them
    compile: bool = False  # torch.compile the model; the compile time is recorded apart from training time

    def __post_init__(self) -> None:
        Budget.parse(self.budget)
        positive = {"batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size,
                    "max_length": self.max_length}
        for name, value in {**positive, "train_limit": self.train_limit, "eval_limit": self.eval_limit}.items():
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be > 0, got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 <= self.warmup < 1:
            raise UserError(f"--warmup must be in [0, 1), got {self.warmup}")
        if not self.checkpoints or any(not 0 < c <= 1 for c in self.checkpoints):
            raise UserError(f"--checkpoints must be fractions in (0, 1], got {self.checkpoints}")
        if self.memory_cap is not None:
            from runners.memory import parse_size
            parse_size(self.memory_cap)
        if self.ablate:
            from runners.speedups import parse_ablate
            parse_ablate(",".join(self.ablate))
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"--device must be auto, cpu or cuda, got {self.device!r}")

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The inverse of `to_dict` (JSON turns tuples into lists)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def speedup(self, name: str) -> bool:
        """Whether the loop's speed-up `name` (runners.speedups) is on, i.e. not ablated."""
        return name not in self.ablate

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
        for name in ("method", "seed", "ablate", "compile"):
            d.pop(name, None)
        return d


_LATER_FIELDS = {"ablate": (), "compile": False, "text_column": "text", "label_column": "label", "splits": None,
                 "data_revision": None, "revision": None}


def stable_hash(obj: object, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]
