"""Head-only training (a linear probe): the GPT-2 body is frozen, only the classification head `score` learns."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register


@dataclass
class HeadParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; a lone linear head tolerates a large one")


@register("head")
class Head(Method):
    summary = "head only: the GPT-2 body is frozen, only the score layer trains"
    Params = HeadParams
    trainable = ("score.",)

    def adapt(self, model: nn.Module) -> nn.Module:
        return freeze_all_but(model, *self.trainable)
