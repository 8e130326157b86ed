"""What prompt tuning, P-tuning and prefix tuning share: trained virtual tokens in front of the input.

A decoder (GPT-2, Llama...) classifies from the last real token. peft feeds prompt-tuned inputs as embeddings, so
the model cannot find the last non-pad token and takes the last position: with right padding that would be a pad.
On a decoder these methods pad on the left, and `Method.build` gives every model positions counted over real tokens
only, so the amount of padding does not change a prediction (the contract test checks this for every method and
architecture). An encoder scores its first position, a virtual token here, and pads on the right as usual.
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import HParams, hp
from methods.peft_base import PeftMethod


@dataclass
class VirtualTokenParams(HParams):
    lr: float = hp(1e-2, "peak learning rate; virtual tokens start random and want a large one")
    lr_range: tuple[float, ...] | None = hp((1e-3, 1e-1),
                                            "prompt methods want rates well above LoRA's (Lester et al. 2021: 0.3)")
    virtual_tokens: int = hp(20, "number of trained virtual tokens")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.virtual_tokens < 1:
            raise ValueError(f"virtual_tokens must be >= 1, got {self.virtual_tokens}")


class VirtualTokenMethod(PeftMethod):
    """Base for peft's prompt-learning methods; a subclass only says which peft config to use."""

    Params = VirtualTokenParams

    @property
    def padding_side(self) -> str:  # a decoder scores the last position: padding goes left; an encoder the first
        return "right" if self.arch is not None and self.arch.kind == "encoder" else "left"
    trainable = ("prompt_encoder", "modules_to_save")  # the virtual tokens (and their encoder), and the head
    mergeable = False  # the virtual tokens are extra positions in every request: no weight to fold them into

    def modules(self) -> dict[str, list[str]]:
        return {"added": [f"{self.params.virtual_tokens} virtual tokens before the input"],
                "trained": list(self.arch.head)}

    def extra_tokens(self) -> int:
        return self.params.virtual_tokens
