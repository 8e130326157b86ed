"""Full fine-tuning: every weight of the model and the new head trains."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class FullParams(HParams):
    lr: float = hp(2e-5, "peak learning rate; full fine-tuning wants a small one")
    lr_range: tuple[float, ...] | None = hp((1e-5, 1e-3),
                                            "every weight moves: GPT-2's usual 1e-5 to 1e-4, and above for short runs")


@register("full")
class Full(Method):
    summary = "full fine-tune: every weight trains"
    Params = FullParams
    trainable = ("",)  # every name matches: everything trains

    def modules(self) -> dict[str, list[str]]:
        return {"trained": ["every weight"]}

    def adapt(self, model: nn.Module) -> nn.Module:
        return model.requires_grad_(True)
