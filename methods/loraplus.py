"""LoRA+ (Hayou et al. 2024): LoRA whose B matrices learn `ratio` times faster than the A matrices.

peft's `create_loraplus_optimizer` builds the optimizer itself; the runner owns the optimizer here, so this file
hands peft a stand-in optimizer class that returns the parameter groups peft made, and passes those on through the
`param_groups` hook: peft's grouping exactly, from peft's own code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import hp
from methods.lora import Lora, LoraParams
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class LoraPlusParams(LoraParams):
    lr: float = hp(5e-4, "peak learning rate of the A matrices and the head")
    lr_range: tuple[float, ...] | None = hp((3e-5, 3e-3), "LoRA's range, less the B matrices' ×ratio")
    ratio: float = hp(16.0, "the B matrices' learning rate is lr × ratio (the paper's λ, 2^4 by default)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.ratio > 0:
            raise ValueError(f"ratio must be > 0, got {self.ratio}")


@register("loraplus")
class LoraPlus(Lora):
    summary = "LoRA+: LoRA with the B matrices at a higher learning rate (lr × ratio)"
    Params = LoraPlusParams

    def param_groups(self, model: nn.Module) -> list[dict]:
        """peft's groups: B matrices and every 1-D parameter (biases, LayerNorm) at lr × ratio, with weight decay off
        for biases and LayerNorm; LoRA on embeddings at peft's fixed 1e-6; the rest (A matrices, head) at lr."""
        from peft.optimizers import create_loraplus_optimizer

        p = self.params
        groups = create_loraplus_optimizer(model, _ParamGroups, lr=p.lr, loraplus_lr_ratio=p.ratio,
                                           loraplus_weight_decay=p.weight_decay)
        # The runner schedules each group's rate as lr × lr_scale, so peft's absolute rates become scales.
        return [{"params": g["params"], "lr_scale": g["lr"] / p.lr, "weight_decay": g["weight_decay"]}
                for g in groups if g["params"]]


def _ParamGroups(groups: list[dict], **defaults) -> list[dict]:  # noqa: N802 (stands in for an optimizer class)
    return groups
