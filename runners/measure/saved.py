"""What a training forward keeps for its backward, by the module that kept it: the activation memory a step holds
at its peak (the end of the forward), apart from weights, gradients and optimizer state.

Every tensor autograd saves passes through a `saved_tensors_hooks` pack hook; forward hooks on every module say
whose forward is running. A tensor is counted once, by its storage (views share it), and the model's parameters
and buffers are not counted (they are weights). Layers are folded together (`h.3.attn` → `h.*.attn`). Under
gradient checkpointing only what the checkpoints keep is seen; the recomputed forward keeps one block more at a
time during backward, which this does not count."""
from __future__ import annotations

import re
from collections import Counter

import torch
from torch import nn

_LAYER = re.compile(r"\.\d+(?=\.|$)")


def kept_for_backward(model: nn.Module, batch: dict, autocast) -> Counter:
    """Bytes kept for backward by one training forward of `batch` under `autocast`, by (module, dtype); the module
    is the innermost one running when the tensor was saved, its layer numbers folded to `*`."""
    names = {m: _LAYER.sub(".*", name) or "(model)" for name, m in model.named_modules()}
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    running: list[str] = []
    seen: set[int] = set()
    kept: Counter = Counter()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen and storage.data_ptr() not in weights and storage.nbytes():
            seen.add(storage.data_ptr())
            kept[(running[-1] if running else "(model)", str(t.dtype).removeprefix("torch."))] += storage.nbytes()
        return t

    def enter(module, *_):
        running.append(names.get(module, "?"))

    def leave(module, *_):
        running.pop()

    hooks = [h for m in model.modules() for h in (m.register_forward_pre_hook(enter),
                                                  m.register_forward_hook(leave, always_call=True))]
    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
            model(**batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return kept


def by_kind(kept: Counter, top: int = 8) -> list[tuple[str, str, float, float]]:
    """The largest (module, dtype, MiB, share %) rows, the rest summed into one."""
    total = sum(kept.values()) or 1
    rows = [(module, dtype, n / 2 ** 20, 100 * n / total) for (module, dtype), n in kept.most_common(top)]
    rest = total - sum(n for _, n in kept.most_common(top))
    if rest > 0:
        rows.append(("(the rest)", "", rest / 2 ** 20, 100 * rest / total))
    return rows
