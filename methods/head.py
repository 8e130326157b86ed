"""Head-only training (a linear probe): the GPT-2 body is frozen, only the classification head `score` learns.

With `cache_features=true` the frozen body runs once per training example, in eval mode (no dropout), and the head
then trains on the stored last-token features: the same probe without body dropout, whose later epochs cost
almost nothing. A FLOPs budget still charges the body's forward for every sample, cached or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class HeadParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; a lone linear head tolerates a large one")
    lr_range: tuple[float, ...] | None = hp((1e-4, 3e-2),
                                            "a linear head on frozen features: a convex problem, large steps")
    cache_features: bool = hp(False, "compute the frozen body's features once per training example and train the "
                                     "head on them (a linear probe without body dropout)")


@register("head")
class Head(Method):
    summary = "head only: the GPT-2 body is frozen, only the score layer trains"
    Params = HeadParams
    trainable = ("score.",)

    @property
    def wants_example_ids(self) -> bool:
        return self.params.cache_features

    def adapt(self, model: nn.Module) -> nn.Module:
        model = freeze_all_but(model, *self.trainable)
        if not self.params.cache_features:
            return model
        from methods._cached_features import CachedFeatures  # a torch module: imported only when a run needs it

        return CachedFeatures(model)

    def deployed(self, model: nn.Module) -> nn.Module:
        """The classifier itself: the feature cache serves training only."""
        from methods._cached_features import CachedFeatures

        return model.model if isinstance(model, CachedFeatures) else model
