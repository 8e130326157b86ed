"""Training budgets in any unit (epochs, steps, samples, seconds, real tokens, FLOPs) and what has been spent."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from runners.core.errors import UserError

_TIME = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
_COUNTS = {"epoch": "epochs", "epochs": "epochs", "step": "steps", "steps": "steps", "sample": "samples",
           "samples": "samples", "token": "tokens", "tokens": "tokens", "flop": "flops", "flops": "flops"}
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}
_PATTERN = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
HELP = "N followed by epochs, steps, samples, tokens, flops (k/M/G/T/P prefixes) or s/m/h"


@dataclass
class Spent:
    """How much training has been done, in every unit a budget can be given in."""

    steps: int = 0
    samples: int = 0
    tokens: int = 0  # real tokens, padding excluded
    flops: float = 0.0  # measured per method: see runners/measure/flops.py
    seconds: float = 0.0  # training wall time, evaluation excluded

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    """How much training a run gets: `amount` of `unit` (epochs, steps, samples, tokens, flops or seconds)."""

    amount: float
    unit: str

    @classmethod
    def parse(cls, text: str) -> Budget:
        m = _PATTERN.match(text)
        if not m:
            raise UserError(f"bad budget {text!r}: use {HELP} (e.g. 1epoch, 500steps, 90s, 2Mtokens, 1e15flops)")
        number, word = float(m.group(1)), m.group(2).lower()
        if word in _TIME:
            amount, unit = number * _TIME[word], "seconds"
        else:
            prefix, unit = _split_prefix(word)
            if unit is None:
                raise UserError(f"bad budget {text!r}: unknown unit {m.group(2)!r}; use {HELP}")
            if prefix and unit in ("epochs", "steps", "samples"):
                raise UserError(f"bad budget {text!r}: prefixes apply to tokens and flops only")
            amount = number * _PREFIX[prefix]
        if amount <= 0 or (unit in ("steps", "samples", "tokens") and amount != int(amount)):
            kind = "integer" if unit in ("steps", "samples", "tokens") else "number"
            raise UserError(f"bad budget {text!r}: {unit} must be a positive {kind}")
        return cls(amount, unit)

    @property
    def needs_clock(self) -> bool:
        """A time budget reads the clock every step (after a device sync on CUDA); others never do."""
        return self.unit == "seconds"

    def total_samples(self, n_train: int) -> int | None:
        """The exact number of samples the budget allows, where the unit is sample-based."""
        if self.unit == "epochs":
            return max(1, round(self.amount * n_train))
        return int(self.amount) if self.unit == "samples" else None

    def total_steps(self, n_train: int, batch_size: int) -> int | None:
        """Optimizer steps the budget allows, where that is known in advance (for progress bars)."""
        if self.unit == "steps":
            return int(self.amount)
        if self.unit == "samples":
            return math.ceil(self.amount / batch_size)
        if self.unit == "epochs":  # every epoch ends in its own partial batch
            whole, part = divmod(self.amount, 1)
            return int(whole) * math.ceil(n_train / batch_size) + math.ceil(round(part * n_train) / batch_size)
        return None

    def fraction(self, spent: Spent, n_train: int) -> float:
        """The share of the budget spent."""
        if self.unit == "epochs":
            return spent.samples / self.total_samples(n_train)
        return getattr(spent, self.unit) / self.amount


def _split_prefix(word: str) -> tuple[str, str | None]:
    if word in _COUNTS:
        return "", _COUNTS[word]
    if word[0] in _PREFIX and word[1:] in _COUNTS:
        return word[0], _COUNTS[word[1:]]
    return "", None


_SIZES = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 10**3, "mb": 10**6, "gb": 10**9}


def parse_size(text: str) -> int:
    """`2GiB`, `512MiB`, `1.5GB` -> bytes (a memory budget, `--memory-cap`)."""
    m = re.match(r"^\s*(\d+(?:\.\d*)?)\s*([a-z]+)\s*$", text, re.IGNORECASE)
    if not m or m.group(2).lower() not in _SIZES or float(m.group(1)) <= 0:
        raise UserError(f"bad --memory-cap {text!r}: use a size like 2GiB, 512MiB or 1.5GB")
    return int(float(m.group(1)) * _SIZES[m.group(2).lower()])


def parse_budgets(text: str) -> list[str]:
    """`30s,2m,8m` to its budgets, each checked; several share one unit, so that one axis shows them all."""
    budgets = list(dict.fromkeys(b.strip() for b in str(text).split(",") if b.strip()))
    if not budgets:
        raise UserError("--budget is empty")
    units = {Budget.parse(b).unit for b in budgets}
    if len(units) > 1:
        raise UserError(f"--budget {text}: the budgets of one command share a unit, got {', '.join(sorted(units))}")
    return budgets
