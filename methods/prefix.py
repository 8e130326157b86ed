"""Prefix tuning (Li & Liang 2021): trained key/value vectors for virtual tokens in every layer's attention
(peft `PrefixTuningConfig`, fed to GPT-2 as a key/value cache)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import hp
from methods.registry import register
from methods.virtual_tokens import VirtualTokenMethod, VirtualTokenParams


@dataclass
class PrefixParams(VirtualTokenParams):
    lr: float = hp(5e-3, "peak learning rate of the prefixes and the head")


@register("prefix")
class PrefixTuning(VirtualTokenMethod):
    summary = "Prefix tuning: trained keys and values for virtual tokens in every layer (peft)"
    Params = PrefixParams

    def peft_config(self):
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=self.params.virtual_tokens)
