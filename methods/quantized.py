"""What the runner must know about a bitsandbytes 4-bit base: packed weights, and forward matmuls no counter sees."""
from __future__ import annotations

from typing import TYPE_CHECKING

from methods.base import Method

if TYPE_CHECKING:
    import torch
    from torch import nn


class FourBitBase(Method):
    """The accounting hooks of a model whose frozen base is bitsandbytes `Linear4bit` layers; a method that loads one
    lists this class first among its bases (`class Qlora(FourBitBase, Lora)`)."""

    packages = ("bitsandbytes",)

    def stored_values_per_element(self, param: torch.Tensor) -> int:
        # A Params4bit is stored as uint8, two 4-bit values to a byte: numel() counts bytes, not weights.
        return 2 * param.element_size() if _is_4bit(param) else 1

    def weight_kind(self, tensor: torch.Tensor) -> str:
        return "4-bit packed" if _is_4bit(tensor) else super().weight_kind(tensor)

    def unseen_forward_flops(self, model: nn.Module, tokens: int) -> float:
        """bitsandbytes' 4-bit forward matmul runs in a kernel torch's counter may not see (its input-gradient
        matmul in backward is a plain one and is counted). A probe on one layer tells whether its forward was
        counted; if not, each 4-bit layer is credited 2·in·out FLOPs per token for every forward pass."""
        from bitsandbytes.nn import Linear4bit

        layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
        if not layers or _forward_is_counted(layers[0]):
            return 0.0
        passes = 1 + bool(getattr(model, "is_gradient_checkpointing", False))  # checkpointing recomputes forward
        return passes * sum(2 * m.in_features * m.out_features for m in layers) * tokens


def _is_4bit(tensor: torch.Tensor) -> bool:
    from bitsandbytes.nn import Params4bit

    return isinstance(tensor, Params4bit)


def _forward_is_counted(layer: nn.Module) -> bool:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(4, layer.in_features, device=layer.weight.device, dtype=layer.compute_dtype or torch.float32)
    with torch.no_grad(), FlopCounterMode(display=False) as c:
        layer(x)
    return c.get_total_flops() >= 2 * layer.in_features * layer.out_features * 4
