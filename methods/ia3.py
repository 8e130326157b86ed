"""IA³ (Liu et al. 2022): learned vectors rescale the attention's keys and values and the MLP's inner
activations; the weights stay frozen (peft `IA3Config`)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import HParams, hp
from methods.peft_base import PeftMethod
from methods.registry import register


@dataclass
class Ia3Params(HParams):
    lr: float = hp(3e-3, "peak learning rate; scaling vectors start at one and want a large one")
    lr_range: tuple[float, ...] | None = hp((3e-4, 3e-2), "scaling vectors near one: above LoRA's range")
    targets: tuple[str, ...] = hp(("c_attn", "mlp.c_proj"), "modules whose activations are rescaled (+ joins)")
    feedforward: tuple[str, ...] = hp(("mlp.c_proj",), "targets whose input, not output, is rescaled (+ joins)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not set(self.feedforward) <= set(self.targets):
            raise ValueError(f"feedforward {list(self.feedforward)} must be among targets {list(self.targets)}")


@register("ia3")
class Ia3(PeftMethod):
    summary = "IA³: learned vectors rescale attention and MLP activations (peft), head trained too"
    Params = Ia3Params
    trainable = ("ia3_l", "modules_to_save")

    def peft_config(self):
        from peft import IA3Config

        return IA3Config(target_modules=list(self.params.targets), feedforward_modules=list(self.params.feedforward),
                         fan_in_fan_out=True)  # GPT-2's Conv1D
