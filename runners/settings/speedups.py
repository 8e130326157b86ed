"""The training loop's speed-ups, by name. Each is on by default; `--ablate NAME` turns one off so that what it buys
can be measured (`python -m runners.bench --ablate`) and its effect on accuracy checked (`runners.compare`)."""
from __future__ import annotations

from runners.core.errors import UserError

SPEEDUPS = {
    "bucketing": "length-grouped batches: similar lengths share a batch (off: plain shuffled batches)",
    "dynamic_padding": "pad each batch to its longest example (off: pad every batch to max_length)",
    "async_loss": "read the loss every 20 steps (off: every step, a host-device sync each)",
    "fused_adamw": "the optimizer's fused kernel, where it has one (off: its per-tensor loop)",
    "sdpa": "PyTorch's scaled-dot-product attention kernel (off: transformers' eager attention)",
    "fused_gelu": "GPT-2's gelu_new as PyTorch's fused tanh-GELU kernel, the same formula (off: gelu_new's chain of "
                  "elementwise ops, each intermediate kept for backward)",
    "bf16": "bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX), weights fp32 (off: fp32)",
    "pinned_memory": "pinned host memory and non-blocking copies, CUDA only (off: pageable, blocking copies)",
}
CUDA_ONLY = ("pinned_memory",)
# The loop's revision (RunConfig.loop). 1: the loop until November 2026 (fp32 on every CPU, GPT-2's gelu_new);
# 2: bf16 autocast on CPUs with native bf16, and the fused GELU. A speed-up added in revision N is off in a run of
# an earlier one, so that a record says what its run computed.
LOOP = 2
SINCE = {"fused_gelu": 2}


def parse_ablate(text: str) -> tuple[str, ...]:
    """`a,b` or `all` to the sorted tuple of speed-up names to turn off."""
    names = sorted(SPEEDUPS) if text.strip() == "all" else sorted({n.strip() for n in text.split(",") if n.strip()})
    unknown = [n for n in names if n not in SPEEDUPS]
    if unknown:
        raise UserError(f"unknown speed-up {', '.join(map(repr, unknown))} for --ablate; "
                        f"choose from {', '.join(SPEEDUPS)} or 'all'")
    return tuple(names)


def loop_label(ablate: tuple[str, ...], compile: bool) -> str:
    """How the loop ran, for a table row: '' when every speed-up was on and nothing compiled."""
    everything = set(ablate) in (set(SPEEDUPS), set(SPEEDUPS) - set(SINCE))  # `all` before a speed-up existed
    parts = (["unoptimized loop"] if everything else ["no " + "+".join(ablate)] if ablate else []) + \
        (["compiled"] if compile else [])
    return f" [{', '.join(parts)}]" if parts else ""
