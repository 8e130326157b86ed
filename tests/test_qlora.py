"""QLoRA's bitsandbytes handling: the 4-bit layout on CPUs with and without AVX512-BF16, and bitsandbytes' noise."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_contract import PAD, build, toy_data

from runners.job.loop import train
from runners.measure import flops
from runners.settings.config import RunConfig


@pytest.mark.parametrize("avx512bf16", [True, False], ids=["avx512bf16", "no-avx512bf16"])
def test_qlora_trains_evaluates_and_trains_again(avx512bf16, tiny_model_dir, monkeypatch):
    """Training resumes after a validation checkpoint with no 4-bit weight in bitsandbytes' packed CPU layout.

    The CPU's instruction set is faked both ways, so both branches run on any machine: with AVX512-BF16,
    bitsandbytes would pack the weights during evaluation (and fail on this model, narrower than a quantization
    block; on a wider one, fail in the next training step)."""
    import bitsandbytes.nn.modules
    from bitsandbytes.nn import Linear4bit

    monkeypatch.setattr(bitsandbytes.nn.modules, "has_avx512bf16", lambda: avx512bf16)
    method, model = build("qlora", tiny_model_dir)
    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert layers

    packed_in_training = []

    def check(module, args):
        if module.training:
            packed_in_training.append(getattr(module.weight.quant_state, "packing_format_for_cpu", False))

    for m in layers:
        m.register_forward_pre_hook(check)
    cfg = RunConfig(method="qlora", seed=0, budget="4steps", batch_size=4, warmup=0.0, checkpoints=(0.5, 1.0))
    res = train(model, method, toy_data(tiny_model_dir), cfg, lr=1e-2, pad_id=PAD, num_labels=2,
                device=torch.device("cpu"), flops=flops.measure(model, torch.device("cpu")), quiet=True)
    assert [round(c["fraction"], 2) for c in res.curve] == [0.5, 1.0] and res.spent.steps == 4
    assert packed_in_training and not any(packed_in_training)
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)


def test_bitsandbytes_kernels_hint_is_filtered_and_nothing_else(caplog):
    import methods  # noqa: F401  (installs the filter)

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ...", "no kernels")
        logger.warning("some other bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["some other bitsandbytes warning"]


def test_importing_what_the_worker_imports_keeps_the_kernels_hint_off_stderr():
    """bitsandbytes logs its hint when imported (by peft, in every worker) on a CPU with AVX512-BF16."""
    root = Path(__file__).resolve().parents[1]
    code = "import runners.job.worker, runners.compare, peft, bitsandbytes"  # in the order a run process does
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "kernels-community" not in out.stderr, out.stderr
