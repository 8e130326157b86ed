"""AdaLoRA (Zhang et al. 2023): SVD-shaped LoRA adapters whose ranks are pruned during training toward an
average budget, the most important layers keeping the most rank (peft `AdaLoraConfig`).

peft schedules the pruning in steps (`tinit`, `tfinal`, `total_step`), but a time or FLOPs budget has no step
count known in advance. This file schedules over the share of the budget spent instead: it gives peft a clock of
`TICKS` ticks and, through the per-step hook, calls `update_and_allocate` with the tick the budget has reached.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import Progress, hp
from methods.lora import Lora, LoraParams
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn

TICKS = 1000  # resolution of the pruning schedule over the budget


@dataclass
class AdaloraParams(LoraParams):
    r: int = hp(8, "average rank the adapters are pruned to (peft target_r)")
    init_r: int = hp(12, "rank every adapter starts with, before pruning")
    tinit: float = hp(0.1, "share of the budget trained at full rank before pruning starts")
    tfinal: float = hp(0.2, "share of the budget, at the end, trained with the final ranks fixed")
    orth_reg_weight: float = hp(0.5, "weight of the orthogonality penalty on P and Q, added to the loss")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_r < self.r:
            raise ValueError(f"init_r must be >= r, got init_r={self.init_r} < r={self.r}")
        if not (0 <= self.tinit and 0 <= self.tfinal and self.tinit + self.tfinal < 1):
            raise ValueError(f"tinit and tfinal must be >= 0 with tinit + tfinal < 1, got {self.tinit}, {self.tfinal}")


@register("adalora")
class Adalora(Lora):
    summary = "AdaLoRA: SVD adapters whose ranks are pruned to a budget while training (peft)"
    Params = AdaloraParams
    trainable = (*Lora.trainable, "lora_E")

    def peft_config(self):
        from peft import AdaLoraConfig

        p = self.params
        return AdaLoraConfig(
            init_r=p.init_r, target_r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
            target_modules=self.target_modules(), fan_in_fan_out=self.arch.conv1d, orth_reg_weight=p.orth_reg_weight,
            total_step=TICKS, tinit=round(p.tinit * TICKS), tfinal=round(p.tfinal * TICKS), deltaT=1,
        )

    def adapt(self, model: nn.Module) -> nn.Module:
        self._tick = -1
        return super().adapt(model)

    def on_step(self, model: nn.Module, progress: Progress) -> None:
        tick = min(round(progress.fraction * TICKS), TICKS)
        final = TICKS - round(self.params.tfinal * TICKS)
        if self._tick < final < tick:  # a coarse step jumped the tick that fixes the final ranks: visit it
            model.base_model.update_and_allocate(final)
        model.base_model.update_and_allocate(tick)
        self._tick = tick
