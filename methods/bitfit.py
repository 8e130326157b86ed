"""BitFit (Ben Zaken et al. 2021): only the bias terms of GPT-2, and the new head, train."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class BitfitParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; biases alone move little and want a large one")
    lr_range: tuple[float, ...] | None = hp((1e-4, 3e-2), "biases alone: LoRA's range and above")


@register("bitfit")
class Bitfit(Method):
    summary = "BitFit: only bias terms (and the head) train"
    Params = BitfitParams
    trainable = (".bias", "score.")  # every bias: attention, MLP and LayerNorm

    def adapt(self, model: nn.Module) -> nn.Module:
        return freeze_all_but(model, *self.trainable)
