"""Prefix tuning (Li & Liang 2021): trained key/value vectors for virtual tokens in every layer's attention
(peft `PrefixTuningConfig`, fed to the model as a key/value cache: a model whose forward takes none, such as
ModernBERT or DeBERTa, is refused before anything loads)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import hp
from methods.registry import register
from methods.virtual_tokens import VirtualTokenMethod, VirtualTokenParams

if TYPE_CHECKING:
    from torch import nn

    from methods.architecture import Architecture


@dataclass
class PrefixParams(VirtualTokenParams):
    lr: float = hp(5e-3, "peak learning rate of the prefixes and the head")
    lr_range: tuple[float, ...] | None = hp((5e-4, 5e-2),
                                            "prefixes in every layer move more than a prompt: below prompt tuning's")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gradient_checkpointing:  # refused here, before any run, rather than by peft in every run
            raise ValueError("gradient_checkpointing=true does not work with prefix tuning (peft refuses it: the "
                             "prefixes are a key/value cache that recomputation cannot replay)")


@register("prefix")
class PrefixTuning(VirtualTokenMethod):
    summary = "Prefix tuning: trained keys and values for virtual tokens in every layer (peft)"
    Params = PrefixParams

    def applies_to(self, arch: Architecture) -> str | None:
        if not arch.takes_cache:
            return (f"{arch.model_type}'s forward takes no key/value cache, which is how peft feeds the prefixes "
                    f"(prompt or ptuning put virtual tokens in the input instead)")
        return super().applies_to(arch)

    def modules(self) -> dict[str, list[str]]:
        return {"added": [f"keys and values of {self.params.virtual_tokens} virtual tokens in every block"],
                "trained": list(self.arch.head)}

    def peft_config(self):
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(num_virtual_tokens=self.params.virtual_tokens)

    def adapt(self, model: nn.Module) -> nn.Module:
        model = super().adapt(model)
        _accept(model)
        return model

    def load_saved(self, folder, ctx) -> nn.Module:
        model = super().load_saved(folder, ctx)
        _accept(model)
        return model


def _accept(model: nn.Module) -> None:
    """The classifier's forward takes the prefixes as `past_key_values`; where it takes no cache at all (BERT's,
    RoBERTa's), peft calls its body itself, whose forward then takes them."""
    classifier = model.base_model
    takes = inspect.signature(classifier.forward).parameters
    accept_past_key_values(classifier if "cache" in takes or "past_key_values" in takes else classifier.base_model)


def accept_past_key_values(model: nn.Module) -> None:
    """Let `model.forward` take the prefix as `past_key_values` where transformers renamed that keyword `cache`.

    transformers 5.24 renamed GPT-2's `forward(past_key_values=)` to `cache` (the old name still works, with a
    FutureWarning, until 5.40); peft 0.21.2 looks for `past_key_values` in the signature and otherwise refuses
    prefix tuning. This does what transformers' own alias does, `cache = past_key_values`, under a signature peft
    finds; on versions that still take `past_key_values` it changes nothing.
    """
    params = inspect.signature(model.forward).parameters
    if "past_key_values" in params or "cache" not in params:
        return
    forward = model.forward

    def renamed(*args, past_key_values=None, **kwargs):
        if past_key_values is not None:  # a peft that passes `cache` itself goes straight through
            kwargs["cache"] = past_key_values
        return forward(*args, **kwargs)

    model.forward = renamed  # on this instance only; nn.Module.__call__ (and its hooks) still wraps it
