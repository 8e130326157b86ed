"""What the peft-based methods share: wrapping the model in the peft config they name, and low-rank hyperparameters."""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, Method, hp, positions_follow_mask

if TYPE_CHECKING:
    from torch import nn


@dataclass
class LowRankParams(HParams):
    """An adapter of some rank on chosen modules, with dropout on its input (LoRA and its variants, VeRA)."""

    r: int = hp(8, "rank of each adapter's update")
    dropout: float = hp(0.05, "dropout on the adapter's input")
    targets: tuple[str, ...] = hp(("c_attn", "c_proj", "c_fc"), "modules to adapt, joined by + on the CLI")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise ValueError("targets must name at least one module")


class PeftMethod(Method):
    """A method peft implements: a subclass says which peft config wraps the model, and `adapt` wraps it."""

    packages = ("peft",)
    mergeable = True  # peft folds most adapters into the base (`merge_and_unload`); virtual tokens say otherwise

    @abstractmethod
    def peft_config(self):
        """The peft config for this method's hyperparameters; its `task_type` is set by `adapt`."""

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        config = self.peft_config()
        # Every method here classifies sequences: peft then also trains a copy of the new head (`modules_to_save`).
        config.task_type = "SEQ_CLS"
        return get_peft_model(model, config)

    def merge(self, model: nn.Module) -> nn.Module:
        return model.merge_and_unload()

    def save(self, model: nn.Module, folder) -> str:
        """peft's own adapter files (`adapter_config.json`, `adapter_model.safetensors`), head included."""
        model.save_pretrained(str(folder))
        return "adapter"

    def load_saved(self, folder, ctx) -> nn.Module:
        """The method's base (as `load_model` loads it: a 4-bit one for QLoRA) with the adapter, through peft."""
        from peft import PeftModel

        model = PeftModel.from_pretrained(self.load_model(ctx), str(folder))
        positions_follow_mask(model)
        return model.eval()
