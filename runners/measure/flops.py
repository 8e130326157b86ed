"""Training FLOPs per step, measured per method: torch's FlopCounterMode on two probe steps.

Counting, not assuming 6·N, is what makes a FLOPs budget fair across methods: head-only runs no backward through
the body, LoRA still propagates activation gradients through every frozen weight, and gradient checkpointing runs
the forward twice. A probe step (forward and backward in training mode, no optimizer update) is counted at two
sequence lengths. The matmul FLOPs of B sequences padded to width L are B·L·(a + c·L) (projections and the head
grow with L, attention scores with L²), so the two probes give a and c, and each real step's FLOPs then follow
from its padded shape on the host, without touching the device.

Two gaps in the counter are filled:
- torch's CPU attention kernel (`_scaled_dot_product_flash_attention_for_cpu`) has no entry in the counter's
  registry; it gets the same formulas as the CUDA flash kernel.
- a method's own layers may run in kernels the counter does not see (a quantized base's matmul); the method
  reports their FLOPs through its `unseen_forward_flops` hook, added to each probe.
"""
from __future__ import annotations

from collections.abc import Callable
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


def measure(model: nn.Module, device: torch.device, unseen: Callable[[nn.Module, int], float] | None = None,
            token_id: int | None = None) -> FlopModel:
    """Count one forward+backward at two widths and solve for the per-token coefficients. `unseen`: the method's
    `unseen_forward_flops(model, tokens)`, FLOPs its layers spend where the counter cannot see them. `token_id`:
    the probe's token (any id the model embeds: FLOPs do not depend on it); by default the middle of its vocabulary,
    read off its first embedding table (the token embeddings, registered before positions and virtual tokens)."""
    (l1, l2) = PROBE_LENGTHS
    if token_id is None:
        token_id = next(m for m in model.modules() if isinstance(m, nn.Embedding)).num_embeddings // 2
    f1, f2 = (_count(model, device, width, token_id, unseen) / (PROBE_BATCH * width) for width in PROBE_LENGTHS)
    quadratic = (f2 - f1) / (l2 - l1)
    return FlopModel(linear=f1 - quadratic * l1, quadratic=quadratic)


def _count(model: nn.Module, device: torch.device, width: int, token_id: int, unseen) -> float:
    ids = torch.full((PROBE_BATCH, width), token_id, dtype=torch.long, device=device)
    labels = torch.zeros(PROBE_BATCH, dtype=torch.long, device=device)
    was_training = model.training
    model.train()  # checkpointing only recomputes in training mode
    with counter() as c:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return c.get_total_flops() + (unseen(model, PROBE_BATCH * width) if unseen else 0.0)
