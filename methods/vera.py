"""VeRA (Kopiczko et al. 2024): one pair of frozen random low-rank matrices shared by every layer; each layer
trains only two scaling vectors (peft `VeraConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import HParams, Method, hp
from methods.registry import register


@dataclass
class VeraParams(HParams):
    lr: float = hp(4e-3, "peak learning rate; scaling vectors want a large one")
    r: int = hp(256, "rank of the shared random projections (trainable count grows only with r's vector)")
    dropout: float = hp(0.0, "dropout on the adapter's input")
    targets: tuple[str, ...] = hp(("c_attn", "c_proj", "c_fc"), "modules to adapt, joined by + on the CLI")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register("vera")
class Vera(Method):
    summary = "VeRA: shared frozen random projections, per-layer scaling vectors train (peft)"
    Params = VeraParams
    trainable = ("vera_lambda_b", "vera_lambda_d", "modules_to_save")

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import VeraConfig, get_peft_model

        p = self.params
        config = VeraConfig(task_type="SEQ_CLS", r=p.r, vera_dropout=p.dropout, target_modules=list(p.targets),
                            fan_in_fan_out=True, save_projection=True)
        return get_peft_model(model, config)
