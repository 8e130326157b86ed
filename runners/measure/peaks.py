"""The device's own limit and how far a run gets to it: the best dense matmul rate per dtype (measured), and MFU's
model FLOPs per real token by the standard formula."""
from __future__ import annotations

import time

import torch

# The device's own limit: the best of `PEAK_TRIES` timed square matmuls at each size (FLOPs 2·n³), per dtype.
PEAK_SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192, 16384)}
PEAK_TRIES = 5
# Datasheet peaks (dense, TFLOP/s), beside the measured ones on CUDA: H100 SXM; --peak-tflops for another GPU's bf16.
DATASHEET_TFLOPS = {"bfloat16": 989.0, "float32": 67.0}
SHORT = {"bfloat16": "bf16", "float32": "fp32"}
SHORT_NAME = {torch.float32: "float32", torch.bfloat16: "bfloat16"}


# The one MFU convention: model FLOPs of the standard formula (Kaplan et al. 2020; PaLM's MFU), per real token.
MFU_FORMULA = ("model FLOPs per real token by the standard formula: 6·N + 12·n_layer·d·T̄ when every weight trains; "
               "4·N + 12·n_layer·d·T̄ when the backward runs through the frozen body to train adapters (no weight "
               "gradients for frozen weights; the adapters' own FLOPs, under 2%, left out); 2·N + 4·n_layer·d·T̄ when "
               "it does not (head); N = 12·n_layer·d² the body's matmul weights, T̄ the mean real length")
HFU_FORMULA = ("the FLOPs computed, as torch's counter measures them (padding, recomputation of checkpointed "
               "activations, flash attention's backward recompute: 14·n_layer·d·T̄ for 12) per second; for the Trainer "
               "peers, our full fine-tune's counted FLOPs per padded shape applied to their batches")
PASSES = {"all": (6, 12), "adapters": (4, 12), "forward": (2, 4)}  # (× N, × n_layer·d·T̄) by what backward computes


def model_flops_per_token(config, mean_length: float, backward: str = "all") -> float:
    """Model FLOPs per real token (MFU_FORMULA). `backward`: "all" (every weight trains), "adapters" (through the
    frozen body, to small adapters) or "forward" (no backward through the body)."""
    d, layers = config.n_embd, config.n_layer
    n, attention = PASSES[backward]
    return n * matmul_weights(config) + attention * layers * d * mean_length


def matmul_weights(config) -> int:
    return config.n_layer * 12 * config.n_embd ** 2  # c_attn 3d², attn c_proj d², c_fc 4d², mlp c_proj 4d²


def backward_kind(r: dict, config) -> str:
    """What a row's backward computes, from what it trains and its counted FLOPs per padded token (a backward
    through the body counts at least 4·N; a forward alone 2·N)."""
    if r["trainable_params"] == r["total_params"]:
        return "all"
    return "adapters" if r["flop_model"]["linear"] > 3 * matmul_weights(config) else "forward"


def measure_peaks(device: torch.device, sizes: tuple[int, ...] | None = None, tries: int = PEAK_TRIES) -> dict:
    """The device's own limit: per dtype, the best dense matmul rate (FLOP/s) over square sizes, best of `tries` each
    after a warm-up; {"float32": {"peak": r, "by_size": {n: r}}, "bfloat16": ...}."""
    sizes = sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"])
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        by_size = {}
        for n in sizes:
            a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
            out = torch.mm(a, b)  # warm-up: allocation and the kernel's choice
            best = float("inf")
            for _ in range(tries):
                _sync(device)
                start = time.perf_counter()
                torch.mm(a, b, out=out)
                _sync(device)
                best = min(best, time.perf_counter() - start)
            by_size[n] = 2 * n ** 3 / best
        peaks[SHORT_NAME[dtype]] = {"peak": max(by_size.values()), "by_size": by_size}
    return peaks



def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peaks_line(peaks: dict) -> str:
    sizes = next(iter(peaks.values()))["by_size"]
    return (f"the device's limit, measured at the start of this run (best dense matmul, square sizes "
            f"{', '.join(map(str, sizes))}, best of {PEAK_TRIES} each): " +
            ", ".join(f"{SHORT[k]} {v['peak'] / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()) +
            f" (bf16/fp32 {peaks['bfloat16']['peak'] / peaks['float32']['peak']:.2f}×)")
