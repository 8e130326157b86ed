"""P-tuning (Liu et al. 2021): virtual-token embeddings produced by a small trained MLP encoder, prepended to
the input (peft `PromptEncoderConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import hp
from methods.registry import register
from methods.virtual_tokens import VirtualTokenMethod, VirtualTokenParams


@dataclass
class PtuningParams(VirtualTokenParams):
    lr: float = hp(1e-3, "peak learning rate; the encoder MLP wants a smaller one than raw prompts")
    lr_range: tuple[float, ...] | None = hp((1e-4, 1e-2), "the encoder MLP is a small network: LoRA's range")
    encoder_hidden: int = hp(128, "hidden width of the MLP that produces the virtual tokens")


@register("ptuning")
class Ptuning(VirtualTokenMethod):
    summary = "P-tuning: virtual tokens from a trained MLP encoder before the input (peft), head trained too"
    Params = PtuningParams

    def peft_config(self):
        from peft import PromptEncoderConfig

        p = self.params
        return PromptEncoderConfig(num_virtual_tokens=p.virtual_tokens, encoder_hidden_size=p.encoder_hidden,
                                   encoder_reparameterization_type="MLP")
