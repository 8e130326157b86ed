"""Prompt tuning (Lester et al. 2021): trained embeddings of virtual tokens prepended to the input; the model
itself stays frozen (peft `PromptTuningConfig`)."""
from __future__ import annotations

from methods.registry import register
from methods.virtual_tokens import VirtualTokenMethod


@register("prompt")
class PromptTuning(VirtualTokenMethod):
    summary = "Prompt tuning: trained virtual-token embeddings before the input (peft), head trained too"

    def peft_config(self):
        from peft import PromptTuningConfig

        return PromptTuningConfig(num_virtual_tokens=self.params.virtual_tokens)
