"""QLoRA (Dettmers et al. 2023): LoRA on a frozen 4-bit NF4 base, with gradient checkpointing on by default."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import hp
from methods.context import ModelContext
from methods.lora import Lora, LoraParams
from methods.quantized import FourBitBase
from methods.registry import register

if TYPE_CHECKING:
    from torch import nn



@dataclass
class QloraParams(LoraParams):
    gradient_checkpointing: bool = hp(True, "recompute activations in backward: less memory, ~1/3 more compute")
    double_quant: bool = hp(True, "also quantize the quantization constants (~0.4 bit/weight saved)")


@register("qlora")
class Qlora(FourBitBase, Lora):  # LoRA with its own load_model; FourBitBase counts the 4-bit weights
    summary = "LoRA on a 4-bit NF4 base (bitsandbytes), gradient checkpointing on"
    Params = QloraParams

    def load_model(self, ctx: ModelContext) -> nn.Module:
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig

        from methods.architecture import describe_config

        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4",
            # the new head stays in fp32 and trains (`nn.Linear` bodies as GPT-2's Conv1D are quantized)
            llm_int8_skip_modules=list(describe_config(ctx.path, ctx.num_labels).head),
            # the dequantized matmuls in the loop's precision: bf16 where it autocasts (CUDA, a CPU with native bf16)
            bnb_4bit_use_double_quant=self.params.double_quant, bnb_4bit_compute_dtype=ctx.dtype,
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            ctx.path, **ctx.load_kwargs(), quantization_config=quant, device_map={"": ctx.device},
        )
        no_cpu_packing(model)
        # Freezes the base and keeps norms and embeddings in fp32; the base class turns on checkpointing.
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def no_cpu_packing(model: nn.Module) -> None:
    """Keep every 4-bit weight in the layout it trains in, on every CPU.

    On a CPU with AVX512-BF16, bitsandbytes' `Linear4bit.forward` repacks its weight for a bf16 inference kernel
    whenever it runs in eval mode on an input that needs no gradient, and leaves it packed. Our evaluation at each
    checkpoint does exactly that, and then: the next training step takes the inference path and fails (bitsandbytes
    0.50: `result += bias` on a leaf that requires grad); packing fails outright on layers narrower than a
    quantization block (64); the packed kernel computes in bf16 whatever the run's precision, so validation of an
    fp32 run would score another model than the one trained (and than other CPUs score); and unpacking re-quantizes
    the constants from bf16, moving the frozen base at every checkpoint. Switched off, evaluation runs the same
    dequantize-and-matmul as training (the packed kernel measured ~5-20% faster per layer here: not worth any of
    that). Harmless on CUDA, which never packs.
    """
    from bitsandbytes.nn import Linear4bit

    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False  # read by Linear4bit.forward, set from the CPU at __init__
