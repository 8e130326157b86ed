"""DoRA (Liu et al. 2024): LoRA with the weight split into magnitude and direction; the adapter steers the
direction and a learned per-column magnitude rescales it (peft `use_dora`)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import hp
from methods.lora import Lora, LoraParams
from methods.registry import register


@dataclass
class DoraParams(LoraParams):
    lr: float = hp(1e-3, "peak learning rate, as for LoRA")


@register("dora")
class Dora(Lora):
    summary = "DoRA: LoRA plus a trained magnitude per output column (peft use_dora)"
    Params = DoraParams
    trainable = (*Lora.trainable, "lora_magnitude_vector")

    def peft_config(self):
        config = super().peft_config()
        config.use_dora = True
        return config
