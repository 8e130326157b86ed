"""VeRA (Kopiczko et al. 2024): one pair of frozen random low-rank matrices shared by every layer; each layer
trains only two scaling vectors (peft `VeraConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import hp
from methods.peft_base import LowRankParams, PeftMethod
from methods.registry import register


@dataclass
class VeraParams(LowRankParams):
    lr: float = hp(4e-3, "peak learning rate; scaling vectors want a large one")
    lr_range: tuple[float, ...] | None = hp((5e-4, 5e-2),
                                            "frozen shared projections, tiny scaling vectors: above LoRA's range")
    r: int = hp(256, "rank of the shared random projections (trainable count grows only with r's vector)")
    dropout: float = hp(0.0, "dropout on the adapter's input")


@register("vera")
class Vera(PeftMethod):
    summary = "VeRA: shared frozen random projections, per-layer scaling vectors train (peft)"
    Params = VeraParams
    trainable = ("vera_lambda_b", "vera_lambda_d", "modules_to_save")

    def peft_config(self):
        from peft import VeraConfig

        p = self.params
        return VeraConfig(r=p.r, vera_dropout=p.dropout, target_modules=self.target_modules(),
                          fan_in_fan_out=self.arch.conv1d, save_projection=True)
