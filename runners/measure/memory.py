"""Memory as a budget: parse a cap, fit the micro-batch under it on CUDA, and break a run's peak down."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

MiB = 1 << 20


class DoesNotFit(RuntimeError):
    """Even a micro-batch of one example does not fit under the memory cap."""


def enforce_cap(cap_bytes: int, device: torch.device) -> None:
    """Make the CUDA caching allocator refuse to grow past the cap, as a smaller GPU would."""
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_bytes / total), device)


def fit_micro_batch(model: nn.Module, collate, lengths: np.ndarray, batch_size: int, reserve_bytes: int,
                    device: torch.device, autocast) -> int:
    """The largest micro-batch (halving from `batch_size`) whose forward and backward on the longest examples
    fit, with `reserve_bytes` (the optimizer state still to come) held aside. Raises DoesNotFit below one."""
    from accelerate.utils import find_executable_batch_size

    longest = np.argsort(-lengths, kind="stable")[:batch_size]
    tried = []

    def halve() -> int:  # accelerate's default, x0.9, probes 14 sizes from 32 down to 5 where halving probes 4
        if tried[-1] == 1:
            raise DoesNotFit(f"a micro-batch of 1 does not fit under the memory cap (with "
                             f"{reserve_bytes / MiB:.0f} MiB of optimizer state to come)")
        return tried[-1] // 2

    @find_executable_batch_size(starting_batch_size=batch_size, reduce_batch_size_fn=halve)
    def probe(micro: int) -> int:
        tried.append(micro)
        reserve = torch.empty(reserve_bytes, dtype=torch.uint8, device=device)
        try:
            with autocast:
                model(**collate(longest[:micro])).loss.backward()
        finally:
            del reserve
            model.zero_grad(set_to_none=True)
        return micro

    return probe()


def breakdown(model: nn.Module, optimizer_state_bytes: int, peak_mib: float,
              weight_kind: Callable[[torch.Tensor], str], high_water: dict[str, float] | None = None) -> dict:
    """Peak memory split into weights (by `weight_kind`, the method's name for how each is stored: its dtype, or
    "4-bit packed"...), gradients, optimizer state, and activations/other; with `high_water`, the high-water mark
    after each phase of the run (the phase where it rises set the peak)."""
    weights: dict[str, float] = {}
    for t in [*model.parameters(), *model.buffers()]:
        kind = weight_kind(t)
        weights[kind] = weights.get(kind, 0.0) + t.numel() * t.element_size() / MiB
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) / MiB
    optimizer = optimizer_state_bytes / MiB
    known = sum(weights.values()) + grads + optimizer
    return {"weights_mib": weights, "gradients_mib": grads, "optimizer_mib": optimizer,
            "activations_other_mib": max(0.0, peak_mib - known), **({"high_water_mib": high_water} if high_water
                                                                   else {})}
