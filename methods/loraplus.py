"""LoRA+ (Hayou et al. 2024): LoRA whose B matrices learn `ratio` times faster than the A matrices.

peft's `create_loraplus_optimizer` builds the optimizer itself; the runner owns the optimizer here, so this file
returns the same grouping (B matrices at lr × ratio, everything else at lr) through the `param_groups` hook.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import hp
from methods.lora import Lora, LoraParams
from methods.registry import register


@dataclass
class LoraPlusParams(LoraParams):
    lr: float = hp(5e-4, "peak learning rate of the A matrices and the head")
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
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        decay = self.params.weight_decay
        return [
            {"params": [p for n, p in named if "lora_B" in n], "lr_scale": self.params.ratio, "weight_decay": decay},
            {"params": [p for n, p in named if "lora_B" not in n], "weight_decay": decay},
        ]
