"""Training budgets: a small object the loop asks how much of the budget has been spent."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from runners.errors import UserError

_UNITS = {"epoch": "epochs", "epochs": "epochs", "step": "steps", "steps": "steps",
          "sample": "samples", "samples": "samples"}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """How much training a run gets, in `unit`s. Parsed from text like `1epoch`, `500steps`, `2e4samples`."""

    amount: float
    unit: str  # "epochs" | "steps" | "samples"
    text: str

    @classmethod
    def parse(cls, text: str) -> Budget:
        m = _PATTERN.match(text)
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if not m or unit is None:
            raise UserError(f"bad budget {text!r}: use N followed by epochs, steps or samples (e.g. 1epoch, "
                            f"500steps, 20000samples)")
        amount = float(m.group(1))
        if amount <= 0 or (unit != "epochs" and amount != int(amount)):
            kind = "number" if unit == "epochs" else "integer"
            raise UserError(f"bad budget {text!r}: {unit} must be a positive {kind}")
        return cls(amount, unit, text.strip())

    def total_samples(self, n_train: int) -> int | None:
        """The sample count the budget allows, where the unit is sample-based."""
        if self.unit == "epochs":
            return max(1, round(self.amount * n_train))
        return int(self.amount) if self.unit == "samples" else None

    def total_steps(self, n_train: int, batch_size: int) -> int:
        """How many optimizer steps the budget allows (for progress bars and schedules)."""
        if self.unit == "steps":
            return int(self.amount)
        if self.unit == "samples":
            return math.ceil(self.amount / batch_size)
        # every epoch ends in its own partial batch
        whole, part = divmod(self.amount, 1)
        return int(whole) * math.ceil(n_train / batch_size) + math.ceil(round(part * n_train) / batch_size)

    def fraction(self, steps: int, samples: int, n_train: int) -> float:
        """The share of the budget spent after `steps` optimizer steps over `samples` examples."""
        total = self.total_samples(n_train)
        return steps / self.amount if total is None else samples / total
