"""BitFit (Ben Zaken et al. 2021): only the bias terms of the body, and the new head, train."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn

    from methods.architecture import Architecture


@dataclass
class BitfitParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; biases alone move little and want a large one")
    lr_range: tuple[float, ...] | None = hp((1e-4, 3e-2), "biases alone: LoRA's range and above")


@register("bitfit")
class Bitfit(Method):
    summary = "BitFit: only bias terms (and the head) train"
    Params = BitfitParams

    def trains(self) -> tuple[str, ...]:
        return (".bias", *(f"{h}." for h in self.arch.head))  # every bias: attention, MLP and norms

    def applies_to(self, arch: Architecture) -> str | None:
        if not arch.biases:
            return f"{arch.model_type} has no bias terms in its body: BitFit would train the head alone (use head)"
        return super().applies_to(arch)

    def modules(self) -> dict[str, list[str]]:
        return {"trained": ["every bias", *self.arch.head]}

    def adapt(self, model: nn.Module) -> nn.Module:
        return freeze_all_but(model, *self.trains())
