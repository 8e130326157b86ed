"""IA³ (Liu et al. 2022): learned vectors rescale the attention's keys and values and the MLP's inner
activations; the weights stay frozen (peft `IA3Config`)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import HParams, Method, hp
from methods.registry import register


@dataclass
class Ia3Params(HParams):
    lr: float = hp(3e-3, "peak learning rate; scaling vectors start at one and want a large one")
    targets: tuple[str, ...] = hp(("c_attn", "mlp.c_proj"), "modules whose activations are rescaled (+ joins)")
    feedforward: tuple[str, ...] = hp(("mlp.c_proj",), "targets whose input, not output, is rescaled (+ joins)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not set(self.feedforward) <= set(self.targets):
            raise ValueError(f"feedforward {list(self.feedforward)} must be among targets {list(self.targets)}")


@register("ia3")
class Ia3(Method):
    summary = "IA³: learned vectors rescale attention and MLP activations (peft), head trained too"
    Params = Ia3Params
    trainable = ("ia3_l", "modules_to_save")

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import IA3Config, get_peft_model

        p = self.params
        config = IA3Config(task_type="SEQ_CLS", target_modules=list(p.targets),
                           feedforward_modules=list(p.feedforward), fan_in_fan_out=True)  # GPT-2's Conv1D
        return get_peft_model(model, config)
