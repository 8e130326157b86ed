"""The device's peak is measured in the precisions asked for, in bounded time, with its progress said; MFU's
formula reads any config (GPT-2, GQA, gated MLPs, encoders)."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config

from runners.measure import peaks

CPU = torch.device("cpu")


def test_peaks_are_measured_in_the_precisions_asked_for_only():
    lines = []
    found = peaks.measure_peaks(CPU, ["float32"], sizes=(32, 64), tries=2, log=lines.append)
    assert set(found) == {"float32"}  # no bf16 probe: on a CPU without native bf16 it is emulated and slow
    assert set(found["float32"]["by_size"]) == {32, 64} and found["float32"]["peak"] == max(
        found["float32"]["by_size"].values()) > 0
    assert [line.split(":")[0] for line in lines] == ["  fp32 32", "  fp32 64"]
    both = peaks.measure_peaks(CPU, ["bfloat16", "float32"], sizes=(32,), tries=1)
    assert set(both) == {"bfloat16", "float32"} and "bf16/fp32" in peaks.peaks_line(both)
    assert "bf16/fp32" not in peaks.peaks_line(found) and "fp32" in peaks.peaks_line(found)


def test_a_size_that_takes_its_time_is_the_last(monkeypatch):
    """A slow size (an emulated bf16 matmul: 3.6 s at 1024 on one thread) is timed once and no larger one starts."""
    clock = iter(range(0, 10_000, 4))  # every matmul "takes" 4 s, over the 3 s allowed per size
    monkeypatch.setattr(peaks.time, "perf_counter", lambda: next(clock))
    lines = []
    found = peaks.measure_peaks(CPU, ["bfloat16"], sizes=(32, 64, 128), log=lines.append)
    assert found["bfloat16"]["by_size"] == {32: 2 * 32 ** 3 / 4} and found["bfloat16"]["tries"] == {32: 1}
    assert lines == ["  bf16 32: 0.0 GFLOP/s (best of 1, 4.0 s)",
                     "  bf16: larger sizes skipped (this one took 3 s or more)"]


def test_model_flops_formula_matches_gpt2_small():
    # GPT-2-small: 85M matmul weights in the blocks -> ~6 x 85M FLOPs per token, plus attention at T=128
    per_token = peaks.model_flops_per_token(GPT2Config(), 128)
    assert per_token == 6 * 12 * 12 * 768 ** 2 + 12 * 12 * 768 * 128
    assert 5.0e8 < per_token < 5.3e8
    # adapters: no weight gradients for the frozen weights; head: no backward through the body
    assert peaks.model_flops_per_token(GPT2Config(), 128, "adapters") == 4 * 12 * 12 * 768 ** 2 + 12 * 12 * 768 * 128
    assert peaks.model_flops_per_token(GPT2Config(), 128, "forward") == 2 * 12 * 12 * 768 ** 2 + 4 * 12 * 768 * 128


def test_gqa_and_gated_mlp_enter_the_formula():
    from runners.data.shapes import shape_config

    qwen = shape_config("qwen3")  # 28 layers, d 1024, 16 query heads and 8 key-value heads of 128, SwiGLU 3072
    m = peaks.Dims.of(qwen)
    assert (m.layers, m.d, m.heads, m.kv_heads, m.head_dim, m.intermediate, m.gated) == (
        28, 1024, 16, 8, 128, 3072, True)
    assert peaks.matmul_weights(qwen) == 28 * (2 * 1024 * 2048 + 2 * 1024 * 1024 + 3 * 1024 * 3072)
    assert peaks.model_flops_per_token(qwen, 20) == 6 * peaks.matmul_weights(qwen) + 12 * 28 * 2048 * 20
    bert = shape_config("bert")
    assert peaks.matmul_weights(bert) == 12 * (4 * 768 ** 2 + 2 * 768 * 3072)


@pytest.mark.parametrize("name", ["gpt2", "qwen3", "llama", "bert", "modernbert"])
def test_the_formula_counts_the_blocks_matmul_weights(name):
    """N from the config equals the weights of every linear layer in the model's blocks (counted on the meta
    device: the full-size shapes, no memory): the formula is right per family."""
    from transformers import AutoModelForSequenceClassification
    from transformers.pytorch_utils import Conv1D

    from runners.data.shapes import shape_config

    config = shape_config(name)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    blocks = max((m for m in model.modules() if isinstance(m, torch.nn.ModuleList)), key=len)
    counted = sum(m.weight.numel() for m in blocks.modules() if isinstance(m, (torch.nn.Linear, Conv1D)))
    assert peaks.matmul_weights(config) == counted
