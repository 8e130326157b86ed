"""LN tuning (Qi et al. 2022): only the norms' scales and shifts train (LayerNorm, RMSNorm: every norm of the body,
methods.architecture), with the head (peft `LNTuningConfig`)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, hp
from methods.peft_base import PeftMethod
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class LnTuningParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; a few thousand LayerNorm weights want a large one")
    lr_range: tuple[float, ...] | None = hp((1e-4, 3e-2), "LayerNorm gains and biases alone: LoRA's range and above")
    targets: tuple[str, ...] = hp((), "norms to tune instead of every norm of the body, joined by + (e.g. ln_1+ln_f), "
                                      "as peft matches them")


@register("lntuning")
class LnTuning(PeftMethod):
    summary = "LN tuning: only the norms' weights and biases (and the head) train (peft)"
    Params = LnTuningParams
    trainable = ("ln_tuning_layers", "modules_to_save")  # peft's trainable copies of the norms, and of the head

    def peft_config(self):
        from peft import LNTuningConfig

        return LNTuningConfig(target_modules=self.norms())

    def norms(self) -> list[str]:
        return list(self.params.targets) or list(self.arch.norms)

    def modules(self) -> dict[str, list[str]]:
        return {"tuned": self.arch.relative(self.norms()), "trained": list(self.arch.head)}

    def adapt(self, model: nn.Module) -> nn.Module:
        with warnings.catch_warnings():  # peft's generic layer check calls LayerNorm "unsupported"; LN tuning is for it
            warnings.filterwarnings("ignore", message="Unsupported layer type", category=UserWarning)
            return super().adapt(model)
