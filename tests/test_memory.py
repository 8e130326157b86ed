"""Memory cap parsing, micro-batch fitting (with simulated out-of-memory on the CPU), and the breakdown."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from torch import nn

import methods
from runners.core.errors import UserError
from runners.measure.memory import DoesNotFit, breakdown, fit_micro_batch
from runners.settings.budget import parse_size

CPU = torch.device("cpu")


@pytest.mark.parametrize("text, size", [("2GiB", 2 << 30), ("512MiB", 512 << 20), ("1.5GB", 1_500_000_000)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["2", "lots", "0GiB", "2 parsecs"])
def test_bad_sizes(text):
    with pytest.raises(UserError, match="bad --memory-cap"):
        parse_size(text)


class Budgeted(nn.Module):
    """Runs out of memory on batches above `fits` examples, as a GPU under a cap would."""

    def __init__(self, fits: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.fits, self.seen = fits, []

    def forward(self, x):
        self.seen.append(len(x))
        if len(x) > self.fits:
            # torch's own wording: accelerate's find_executable_batch_size tells an out-of-memory by its message
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB (simulated)")
        return type("Out", (), {"loss": (self.w * x).sum()})


def collate(idx):
    return {"x": torch.ones(len(idx))}


def test_micro_batch_halves_until_it_fits():
    model = Budgeted(fits=5)
    assert fit_micro_batch(model, collate, np.arange(40), 32, 0, CPU, nullcontext()) == 4
    assert model.seen == [32, 16, 8, 4] and model.w.grad is None  # the probe leaves no gradient behind


def test_other_errors_are_not_taken_for_out_of_memory():
    class Broken(Budgeted):
        def forward(self, x):
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        fit_micro_batch(Broken(fits=99), collate, np.arange(40), 32, 0, CPU, nullcontext())


def test_does_not_fit_at_one():
    with pytest.raises(DoesNotFit, match="micro-batch of 1 does not fit"):
        fit_micro_batch(Budgeted(fits=0), collate, np.arange(40), 32, 0, CPU, nullcontext())


def test_breakdown_adds_up():
    model = nn.Linear(256, 256)  # 65,792 fp32 weights
    model.bias.requires_grad_(False)
    method = methods.get("full")()  # the base class's accounting: fp32 weights, AdamW
    state = method.optimizer_state_bytes(model)
    assert state == 2 * 4 * 256 * 256
    parts = breakdown(model, state, peak_mib=10.0, weight_kind=method.weight_kind)
    assert parts["weights_mib"] == {"float32": pytest.approx(65_792 * 4 / 2**20)}
    assert parts["gradients_mib"] == pytest.approx(256 * 256 * 4 / 2**20)
    total = sum(parts["weights_mib"].values()) + parts["gradients_mib"] + parts["optimizer_mib"]
    assert parts["activations_other_mib"] == pytest.approx(10.0 - total)


def test_the_default_optimizer_state_estimate_is_what_the_default_optimizer_allocates():
    model = nn.Linear(64, 8)
    method = methods.get("full")()
    optimizer = method.make_optimizer(method.param_groups(model), lr=1e-3, fused=False)
    model(torch.ones(2, 64)).sum().backward()
    optimizer.step()
    allocated = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values())
    estimate = method.optimizer_state_bytes(model)
    assert estimate <= allocated <= estimate + 8 * len(optimizer.state)  # AdamW also keeps a step count per tensor
