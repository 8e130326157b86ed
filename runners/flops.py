"""Training FLOPs per step, measured per method: torch's FlopCounterMode on two probe steps.

Counting, not assuming 6·N, is what makes a FLOPs budget fair across methods: head-only runs no backward through
the body, LoRA still propagates activation gradients through every frozen weight, and gradient checkpointing runs
the forward twice. A probe step (forward and backward in training mode, no optimizer update) is counted at two
sequence lengths. The matmul FLOPs of B sequences padded to width L are B·L·(a + c·L) (projections and the head
grow with L, attention scores with L²), so the two probes give a and c, and each real step's FLOPs then follow
from its padded shape on the host, without touching the device.

Two gaps in the counter are filled here, each checked rather than assumed:
- torch's CPU attention kernel (`_scaled_dot_product_flash_attention_for_cpu`) has no entry in the counter's
  registry; it gets the same formulas as the CUDA flash kernel.
- bitsandbytes' 4-bit forward matmul runs in a kernel the counter does not see (its input-gradient matmul in
  backward is a plain one and is counted). A probe on one 4-bit layer tells whether its forward was counted;
  if not, each 4-bit layer is credited 2·in·out FLOPs per token for every forward pass (two with checkpointing).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.utils.flop_counter as fc
from torch import nn

PROBE_LENGTHS = (16, 32)
PROBE_BATCH = 2


def _sdpa_forward(q, k, v, *_, out_shape=None, **__):
    return fc.sdpa_flop_count(q, k, v)


def _sdpa_backward(grad, q, k, v, *_, out_shape=None, **__):
    return fc.sdpa_backward_flop_count(grad, q, k, v)


_EXTRA = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward,
          torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward}


def counter() -> fc.FlopCounterMode:
    return fc.FlopCounterMode(display=False, custom_mapping=_EXTRA)


@dataclass(frozen=True)
class FlopModel:
    linear: float  # FLOPs per padded token
    quadratic: float  # FLOPs per padded token per position (attention)

    def step(self, batch: int, width: int) -> float:
        return batch * width * (self.linear + self.quadratic * width)

    def to_dict(self) -> dict:
        return asdict(self)


def measure(model: nn.Module, device: torch.device, token_id: int = 464) -> FlopModel:
    """Count one forward+backward at two widths and solve for the per-token coefficients."""
    (l1, l2) = PROBE_LENGTHS
    f1, f2 = (_count(model, device, width, token_id) / (PROBE_BATCH * width) for width in PROBE_LENGTHS)
    quadratic = (f2 - f1) / (l2 - l1)
    return FlopModel(linear=f1 - quadratic * l1, quadratic=quadratic)


def _count(model: nn.Module, device: torch.device, width: int, token_id: int) -> float:
    ids = torch.full((PROBE_BATCH, width), token_id, dtype=torch.long, device=device)
    labels = torch.zeros(PROBE_BATCH, dtype=torch.long, device=device)
    was_training = model.training
    model.train()  # checkpointing only recomputes in training mode
    with counter() as c:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return c.get_total_flops() + _unseen_4bit_forward(model, PROBE_BATCH * width)


def _unseen_4bit_forward(model: nn.Module, tokens: int) -> float:
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0.0
    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    if not layers or _forward_is_counted(layers[0]):
        return 0.0
    passes = 1 + bool(getattr(model, "is_gradient_checkpointing", False))  # checkpointing recomputes forward
    return passes * sum(2 * m.in_features * m.out_features for m in layers) * tokens


def _forward_is_counted(layer: nn.Module) -> bool:
    x = torch.zeros(4, layer.in_features, device=layer.weight.device, dtype=layer.compute_dtype or torch.float32)
    with torch.no_grad(), counter() as c:
        layer(x)
    return c.get_total_flops() >= 2 * layer.in_features * layer.out_features * 4
