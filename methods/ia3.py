"""IA³ (Liu et al. 2022): learned vectors rescale the attention's keys and values and the MLP's inner
activations (by role, for any architecture: methods.architecture); the weights stay frozen (peft `IA3Config`).
Where keys and values come out of one fused projection (GPT-2's c_attn), its whole output is rescaled."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import HParams, hp
from methods.peft_base import TARGETS_HELP, PeftMethod, check_roles
from methods.registry import register


@dataclass
class Ia3Params(HParams):
    lr: float = hp(3e-3, "peak learning rate; scaling vectors start at one and want a large one")
    lr_range: tuple[float, ...] | None = hp((3e-4, 3e-2), "scaling vectors near one: above LoRA's range")
    roles: tuple[str, ...] = hp(("kv", "mlp_out"), "roles whose activations are rescaled, joined by + (the paper's: "
                                                   "keys, values, the MLP's inner activations)")
    feedforward_roles: tuple[str, ...] = hp(("mlp_out",), "roles among `roles` whose input, not output, is rescaled")
    targets: tuple[str, ...] = hp((), TARGETS_HELP)
    feedforward: tuple[str, ...] = hp((), "with targets=: the targets whose input, not output, is rescaled (+ joins)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_roles(self.roles, self.targets)
        if self.targets and not set(self.feedforward) <= set(self.targets):
            raise ValueError(f"feedforward {list(self.feedforward)} must be among targets {list(self.targets)}")
        if not self.targets and not set(self.feedforward_roles) <= set(self.roles):
            raise ValueError(f"feedforward_roles {list(self.feedforward_roles)} must be among roles "
                             f"{list(self.roles)}")


@register("ia3")
class Ia3(PeftMethod):
    summary = "IA³: learned vectors rescale attention and MLP activations (peft), head trained too"
    Params = Ia3Params
    trainable = ("ia3_l", "modules_to_save")

    def peft_config(self):
        from peft import IA3Config

        p = self.params
        feedforward = list(p.feedforward) if p.targets else self.arch.modules(p.feedforward_roles)
        return IA3Config(target_modules=self.target_modules(), feedforward_modules=feedforward,
                         fan_in_fan_out=self.arch.conv1d)  # GPT-2's Conv1D stores weights as (in, out)
