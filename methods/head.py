"""Head-only training (a linear probe): the body is frozen, only the classification head learns (GPT-2's `score`,
BERT's `classifier`, RoBERTa's `classifier` block, ModernBERT's `head` and `classifier`: methods.architecture).

With `cache_features=true` the frozen body runs once per training example, in eval mode (no dropout), and the head
then trains on the stored features it scores (a decoder's last real token, an encoder's pooled output): the same
probe without body dropout, whose later epochs cost almost nothing. A FLOPs budget still charges the body's forward
for every sample, cached or not. The cache needs a head that is one linear layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, freeze_all_but, hp
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn

    from methods.architecture import Architecture


@dataclass
class HeadParams(HParams):
    lr: float = hp(1e-3, "peak learning rate; a lone linear head tolerates a large one")
    lr_range: tuple[float, ...] | None = hp((1e-4, 3e-2),
                                            "a linear head on frozen features: a convex problem, large steps")
    cache_features: bool = hp(False, "compute the frozen body's features once per training example and train the "
                                     "head on them (a linear probe without body dropout)")


@register("head")
class Head(Method):
    summary = "head only: the body is frozen, only the classification head trains"
    Params = HeadParams

    def trains(self) -> tuple[str, ...]:
        return tuple(f"{h}." for h in self.arch.head)

    def applies_to(self, arch: Architecture) -> str | None:
        if self.params.cache_features and not arch.head_is_linear:
            return (f"cache_features=true caches what a one-layer linear head scores; {arch.model_type}'s head is "
                    f"{'+'.join(arch.head)}, more than one linear layer")
        return super().applies_to(arch)

    def modules(self) -> dict[str, list[str]]:
        return {"trained": list(self.arch.head)}

    @property
    def wants_example_ids(self) -> bool:
        return self.params.cache_features

    def adapt(self, model: nn.Module) -> nn.Module:
        model = freeze_all_but(model, *self.trains())
        if not self.params.cache_features:
            return model
        from methods._cached_features import CachedFeatures  # a torch module: imported only when a run needs it

        return CachedFeatures(model, self.arch.head[0])

    def deployed(self, model: nn.Module) -> nn.Module:
        """The classifier itself: the feature cache serves training only."""
        from methods._cached_features import CachedFeatures

        return model.model if isinstance(model, CachedFeatures) else model
