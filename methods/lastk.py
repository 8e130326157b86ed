"""Partial fine-tune: the top `layers` transformer blocks, the final LayerNorm and the head train; the embeddings
and lower blocks stay frozen, so backward stops early and their optimizer state is never allocated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class LastKParams(HParams):
    lr: float = hp(5e-5, "peak learning rate; whole blocks train, so a full fine-tune's order of magnitude")
    lr_range: tuple[float, ...] | None = hp((1e-5, 1e-3), "whole blocks train: full fine-tuning's range")
    layers: int = hp(2, "how many of the top transformer blocks train")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layers < 1:
            raise ValueError(f"layers must be >= 1, got {self.layers}")


@register("lastk")
class LastK(Method):
    summary = "Partial fine-tune: the top k blocks, final LayerNorm and head train"
    Params = LastKParams
    trainable = ("ln_f.", "score.")  # adapt adds the top blocks once the depth is known

    def adapt(self, model: nn.Module) -> nn.Module:
        depth = model.config.n_layer
        if self.params.layers > depth:
            raise ValueError(f"lastk:layers={self.params.layers} but the model has only {depth} blocks")
        self.trainable = (*type(self).trainable, *(f".h.{i}." for i in range(depth - self.params.layers, depth)))
        return freeze_all_but(model, *self.trainable)
