"""Partial fine-tune: the top `layers` blocks, what sits above them in the body (the final norm; BERT's pooler) and
the head train; the embeddings and lower blocks stay frozen, so backward stops early and their optimizer state is
never allocated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.architecture import ArchitectureError
from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn

    from methods.architecture import Architecture


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
    summary = "Partial fine-tune: the top k blocks, the final norm and the head train"
    Params = LastKParams

    def applies_to(self, arch: Architecture) -> str | None:
        if self.params.layers > arch.depth:
            return f"lastk:layers={self.params.layers} but {arch.model_type} here has only {arch.depth} blocks"
        return super().applies_to(arch)

    def trains(self) -> tuple[str, ...]:
        return tuple(f"{name}." for name in self._trained())

    def modules(self) -> dict[str, list[str]]:
        return {"trained": self._trained()}

    def _trained(self) -> list[str]:
        try:
            blocks = self.arch.top_blocks(self.params.layers)
        except ArchitectureError as e:
            raise ValueError(f"lastk:layers={self.params.layers}: {e}") from None
        return [*blocks, *self.arch.top, *self.arch.head]

    def adapt(self, model: nn.Module) -> nn.Module:
        return freeze_all_but(model, *self.trains())
