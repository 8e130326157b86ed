"""LoRA (Hu et al. 2021) through peft: low-rank adapters on the attention and MLP projections (by role, for any
architecture: methods.architecture)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import hp
from methods.peft_base import LowRankParams, PeftMethod
from methods.registry import register


@dataclass
class LoraParams(LowRankParams):
    lr: float = hp(1e-3, "peak learning rate; adapters start at zero and want a larger one than full")
    lr_range: tuple[float, ...] | None = hp((1e-4, 1e-2),
                                            "about 10x full fine-tuning's (Schulman et al. 2025, LoRA Without Regret)")
    alpha: float = hp(16.0, "scaling numerator: the update is scaled by alpha / r")


@register("lora")
class Lora(PeftMethod):
    summary = "LoRA adapters on attention and MLP projections (peft), head trained too"
    Params = LoraParams
    trainable = ("lora_A", "lora_B", "modules_to_save")  # adapters, and peft's trainable copy of the head

    def peft_config(self):
        """LoRA's variants (DoRA, AdaLoRA) change only this."""
        from peft import LoraConfig

        p = self.params
        return LoraConfig(r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=self.target_modules(),
                          fan_in_fan_out=self.arch.conv1d)  # GPT-2's Conv1D stores weights as (in, out)
