"""LoRA (Hu et al. 2021) through peft: low-rank adapters on GPT-2's attention and MLP projections."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import HParams, Method, hp
from methods.registry import register


@dataclass
class LoraParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; adapters start at zero and want a larger one than full")
    r: int = hp(8, "rank of each adapter's update")
    alpha: float = hp(16.0, "scaling numerator: the update is scaled by alpha / r")
    dropout: float = hp(0.05, "dropout on the adapter's input")
    targets: tuple[str, ...] = hp(("c_attn", "c_proj", "c_fc"), "modules to adapt, joined by + on the CLI")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise ValueError("targets must name at least one module")


@register("lora")
class Lora(Method):
    summary = "LoRA adapters on attention and MLP projections (peft), head trained too"
    Params = LoraParams
    trainable = ("lora_A", "lora_B", "modules_to_save")  # adapters, and peft's trainable copy of the head

    def peft_config(self):
        """The peft config to wrap the model with; LoRA's variants (DoRA, AdaLoRA) change only this."""
        from peft import LoraConfig

        p = self.params
        return LoraConfig(
            task_type="SEQ_CLS",  # also trains the new `score` head (modules_to_save)
            r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=list(p.targets),
            fan_in_fan_out=True,  # GPT-2's projections are Conv1D, storing weights as (in, out)
        )

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        return get_peft_model(model, self.peft_config())
