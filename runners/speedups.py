"""The training loop's speed-ups, by name. Each is on by default; `--ablate NAME` turns one off so that what it buys
can be measured (`python -m runners.bench --ablate`) and its effect on accuracy checked (`runners.compare`)."""
from __future__ import annotations

from runners.errors import UserError

SPEEDUPS = {
    "bucketing": "length-grouped batches: similar lengths share a batch (off: plain shuffled batches)",
    "dynamic_padding": "pad each batch to its longest example (off: pad every batch to max_length)",
    "async_loss": "read the loss every 20 steps (off: every step, a host-device sync each)",
    "fused_adamw": "the optimizer's fused kernel, where it has one (off: its per-tensor loop)",
    "sdpa": "PyTorch's scaled-dot-product attention kernel (off: transformers' eager attention)",
    "bf16": "bf16 autocast, CUDA only (off: fp32 matmuls)",
    "pinned_memory": "pinned host memory and non-blocking copies, CUDA only (off: pageable, blocking copies)",
}
CUDA_ONLY = ("bf16", "pinned_memory")


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
    parts = (["no " + "+".join(ablate)] if 0 < len(ablate) < len(SPEEDUPS) else
             ["unoptimized loop"] if ablate else []) + (["compiled"] if compile else [])
    return f" [{', '.join(parts)}]" if parts else ""
