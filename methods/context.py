"""What a method is told about the model it loads and where it trains: `ModelContext`."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from methods.architecture import activation_of

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelContext:
    """What a method needs to load a model: where it is, how many labels, and where it will train."""

    path: str  # a local folder holding config.json and *.safetensors
    num_labels: int
    pad_token_id: int
    device: torch.device
    use_safetensors: bool = True  # False only for a local pickle checkpoint the user allowed (--allow-pickle)
    attention: str = "sdpa"  # transformers' attn_implementation; "eager" when the loop's sdpa speed-up is ablated
    bf16: bool = True  # the loop's bf16 speed-up (False: --ablate bf16); the device decides whether it applies
    fused_gelu: bool = True  # the loop's fused_gelu speed-up (False: --ablate fused_gelu)
    # What the loop computes in on this device, as the runner decided it from the device and the bf16 speed-up
    # (bfloat16 where it autocasts: CUDA, a CPU with native bf16; else float32); a quantized base's dequantized
    # matmuls follow it. The method library reads it here and decides nothing about devices itself.
    compute_dtype: str = "float32"

    @property
    def dtype(self) -> torch.dtype:
        """`compute_dtype` as torch's dtype."""
        import torch

        return getattr(torch, self.compute_dtype)

    @functools.cached_property
    def config(self):
        """The model's config (transformers' AutoConfig), read once."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.path)

    def load_kwargs(self) -> dict[str, Any]:
        """`from_pretrained`'s arguments every method's model loads with: fp32 weights, a fresh head, the attention
        and activation kernels the loop's speed-ups choose."""
        import torch

        return dict(num_labels=self.num_labels, pad_token_id=self.pad_token_id, dtype=torch.float32,
                    use_safetensors=self.use_safetensors, attn_implementation=self.attention_in_use(),
                    **self.activation())

    def attention_in_use(self) -> str:
        """`attention`, or "eager" where the model's attention has no sdpa path in transformers (DeBERTa's)."""
        from methods.architecture import sdpa_supported

        return self.attention if self.attention != "sdpa" or sdpa_supported(self.config) else "eager"

    def activation(self) -> dict[str, str]:
        """The config override that swaps the model's activation for a fused kernel of the same formula, when the
        fused_gelu speed-up is on: GPT-2's `gelu_new` (tanh-approximated GELU as a Python chain of mul, pow, tanh
        and add, every intermediate kept for backward) becomes PyTorch's `gelu_pytorch_tanh`. Other activations
        (SiLU, exact GELU...) are left as they are: `activation_in_use` says which ran."""
        key, current = activation_of(self.config)
        return {key: FUSED_ACTIVATIONS[current]} if self.fused_gelu and current in FUSED_ACTIVATIONS else {}

    def activation_in_use(self) -> str | None:
        """The activation the run's model computes with, as the record names it: `gelu_new -> gelu_pytorch_tanh
        (fused_gelu)`, or the model's own (`silu`)."""
        key, current = activation_of(self.config)
        swapped = self.activation()
        return f"{current} -> {swapped[key]} (fused_gelu)" if swapped else current


# An activation -> the fused kernel of the same formula (measured on the same loss to ~6 digits: tests/test_gelu.py).
FUSED_ACTIVATIONS = {"gelu_new": "gelu_pytorch_tanh"}
