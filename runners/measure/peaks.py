"""The device's own limit and how far a run gets to it: the best dense matmul rate per dtype (measured, in the
precisions the runs compute in, in bounded time), and MFU's model FLOPs per real token by the standard formula,
read from any model's config."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# The device's own limit: the best of up to `PEAK_TRIES` timed square matmuls at each size (FLOPs 2·n³), per dtype.
PEAK_SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192, 16384)}
PEAK_TRIES = 5
# Seconds per dtype and size, warm-up included: tries stop once it is spent, and a size that spent it is the last
# (a CPU without native bf16 emulates it at ~0.6 GFLOP/s: 3.6 s for one 1024-square matmul, 29 s at 2048).
PEAK_SECONDS = 3.0
# Datasheet peaks (dense, TFLOP/s), beside the measured ones on CUDA: H100 SXM; --peak-tflops for another GPU's bf16.
DATASHEET_TFLOPS = {"bfloat16": 989.0, "float32": 67.0}
SHORT = {"bfloat16": "bf16", "float32": "fp32"}
SHORT_NAME = {torch.float32: "float32", torch.bfloat16: "bfloat16"}

# Families whose MLP is gated (three d·I matrices: gate, up, down): SwiGLU (Llama, Qwen, Mistral, Gemma), and
# ModernBERT's GeGLU (one d → 2·I matrix holding gate and up, and I → d). The others have two (GPT-2, BERT).
GATED_MLP = {"llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3_text", "phi3", "olmo2", "modernbert"}

# The one MFU convention: model FLOPs of the standard formula (Kaplan et al. 2020; PaLM's MFU), per real token.
MFU_FORMULA = ("model FLOPs per real token by the standard formula: 6·N + 12·n_layer·A·T̄ when every weight trains; "
               "4·N + 12·n_layer·A·T̄ when the backward runs through the frozen body to train adapters (no weight "
               "gradients for frozen weights; the adapters' own FLOPs, under 2%, left out); 2·N + 4·n_layer·A·T̄ when "
               "it does not (head); N = n_layer·(2·d·A + 2·d·K + m·d·I) the blocks' matmul weights (query and output "
               "d·A each, key and value d·K each, the MLP m matrices of d·I), A = heads·head_dim, K = key-value "
               "heads·head_dim (GQA), I the MLP's width, m = 3 for a gated MLP (Llama and Qwen3: SwiGLU; ModernBERT: "
               "GeGLU), 2 otherwise (GPT-2, BERT), so 12·n_layer·d² for GPT-2; embeddings (a lookup) and the task head "
               "(BERT's pooler, ModernBERT's head: once per text) left out; attention over all T̄ positions, encoders' "
               "and ModernBERT's local layers too (exact under 64 tokens); T̄ the mean real length")
HFU_FORMULA = ("the FLOPs computed, as torch's counter measures them (padding, recomputation of checkpointed "
               "activations, flash attention's backward recompute: 14·n_layer·A·T̄ for 12) per second; for a Trainer "
               "twin, its run's counted FLOPs per padded shape applied to the twin's batches")
PASSES = {"all": (6, 12), "adapters": (4, 12), "forward": (2, 4)}  # (× N, × n_layer·A·T̄) by what backward computes


@dataclass(frozen=True)
class Dims:
    """The sizes MFU's formula reads from a config, under one set of names whatever the family calls them."""

    layers: int
    d: int  # hidden width
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int  # the MLP's inner width I
    gated: bool  # three d·I matrices (gate, up, down) rather than two

    @classmethod
    def of(cls, config) -> Dims:
        d, heads = config.hidden_size, config.num_attention_heads  # GPT-2's n_embd and n_head, by its attribute map
        inner = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * d
        return cls(layers=config.num_hidden_layers, d=d, heads=heads,
                   kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                   head_dim=getattr(config, "head_dim", None) or d // heads, intermediate=inner,
                   gated=config.model_type in GATED_MLP)

    @property
    def attention_width(self) -> int:
        return self.heads * self.head_dim


def matmul_weights(config) -> int:
    """N: the weights of the blocks' matmuls (MFU_FORMULA)."""
    m = Dims.of(config)
    a, k = m.attention_width, m.kv_heads * m.head_dim
    return m.layers * (2 * m.d * a + 2 * m.d * k + (3 if m.gated else 2) * m.d * m.intermediate)


def model_flops_per_token(config, mean_length: float, backward: str = "all") -> float:
    """Model FLOPs per real token (MFU_FORMULA). `backward`: "all" (every weight trains), "adapters" (through the
    frozen body, to small adapters) or "forward" (no backward through the body)."""
    m = Dims.of(config)
    n, attention = PASSES[backward]
    return n * matmul_weights(config) + attention * m.layers * m.attention_width * mean_length


def backward_kind(r: dict, config) -> str:
    """What a row's backward computes, from what it trains and its counted FLOPs per padded token (a backward
    through the body counts at least 4·N; a forward alone 2·N)."""
    if r["trainable_params"] == r["total_params"]:
        return "all"
    return "adapters" if r["flop_model"]["linear"] > 3 * matmul_weights(config) else "forward"


def measure_peaks(device: torch.device, dtypes: Sequence[str] = ("float32", "bfloat16"),
                  sizes: tuple[int, ...] | None = None, tries: int = PEAK_TRIES, seconds: float = PEAK_SECONDS,
                  log: Callable[[str], None] = lambda line: None) -> dict:
    """The device's own limit in each of `dtypes` (the precisions the runs compute in): the best dense matmul rate
    (FLOP/s) over square `sizes`, timed once as a warm-up and then up to `tries` more times while `seconds` last;
    a size that used its seconds up is the last. Each size's line goes to `log` as it is measured.
    {"float32": {"peak": r, "by_size": {n: r}, "tries": {n: k}}, ...}."""
    sizes = sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"])
    peaks = {}
    for name in dtypes:
        dtype = getattr(torch, name)
        by_size, counted = {}, {}
        for n in sizes:
            a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
            out = torch.empty(n, n, device=device, dtype=dtype)
            spent = _timed_mm(a, b, out, device)  # the warm-up: allocation and the kernel's choice
            times = []
            while len(times) < tries and spent < seconds:
                times.append(_timed_mm(a, b, out, device))
                spent += times[-1]
            by_size[n] = 2 * n ** 3 / min(times or [spent])  # the warm-up alone only where it took all the time
            counted[n] = len(times) or 1
            log(f"  {SHORT[name]} {n}: {by_size[n] / 1e9:,.1f} GFLOP/s (best of {counted[n]}, {spent:.1f} s)")
            if spent >= seconds and n != sizes[-1]:
                log(f"  {SHORT[name]}: larger sizes skipped (this one took {seconds:g} s or more)")
                break
        peaks[name] = {"peak": max(by_size.values()), "by_size": by_size, "tries": counted}
    return peaks


def _timed_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    torch.mm(a, b, out=out)
    _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peaks_line(peaks: dict) -> str:
    """The measured limit as the tables' header says it."""
    parts = [f"{SHORT[k]} {v['peak'] / 1e9:,.0f} GFLOP/s (sizes {', '.join(map(str, v['by_size']))})"
             for k, v in peaks.items()]
    ratio = (f" (bf16/fp32 {peaks['bfloat16']['peak'] / peaks['float32']['peak']:.2f}×)"
             if {"bfloat16", "float32"} <= set(peaks) else "")
    return (f"the device's limit, measured at the start of this run in the precisions its rows ran in (best dense "
            f"square matmul, up to {PEAK_TRIES} tries per size in {PEAK_SECONDS:g} s): " + ", ".join(parts) + ratio)
