"""QLoRA (Dettmers et al. 2023): LoRA on a frozen 4-bit NF4 base, with gradient checkpointing on by default."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import ModelContext, hp
from methods.lora import Lora, LoraParams
from methods.registry import register


@dataclass
class QloraParams(LoraParams):
    gradient_checkpointing: bool = hp(True, "recompute activations in backward: less memory, ~1/3 more compute")
    double_quant: bool = hp(True, "also quantize the quantization constants (~0.4 bit/weight saved)")


@register("qlora")
class Qlora(Lora):
    summary = "LoRA on a 4-bit NF4 base (bitsandbytes), gradient checkpointing on"
    Params = QloraParams

    def load_model(self, ctx: ModelContext) -> nn.Module:
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=self.params.double_quant, bnb_4bit_compute_dtype=ctx.compute_dtype,
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            ctx.path, num_labels=ctx.num_labels, pad_token_id=ctx.pad_token_id, dtype=torch.float32,
            use_safetensors=ctx.use_safetensors, quantization_config=quant, device_map={"": ctx.device},
            attn_implementation=ctx.attention,
        )
        # Freezes the base and keeps norms and embeddings in fp32; the base class turns on checkpointing.
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
