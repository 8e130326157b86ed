"""How a trained model is kept on disk: the whole model, or only the tensors training changed (safetensors).

Peft's adapters are saved by peft itself (methods.peft_base). A folder holds one format, named by `save_trained`'s
return value; `load_trained` reads it back the way a user would: `from_pretrained` on the folder for a whole model,
or the pretrained base with the saved tensors put over it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from methods.base import Method
    from methods.context import ModelContext

TENSORS = "trained.safetensors"
# Keep only the trained tensors when they are under this share of the model: the base is then the bigger part, and
# the user has it already (the pretrained checkpoint).
TENSORS_BELOW = 0.5


def save_trained(model: nn.Module, folder: Path) -> str:
    """A whole model (`save_pretrained`, safetensors) where most of it trained, else its trained tensors alone."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = dict(model.named_parameters())
    trained = {n: p for n, p in params.items() if p.requires_grad}
    if sum(p.numel() for p in trained.values()) >= TENSORS_BELOW * sum(p.numel() for p in params.values()):
        model.save_pretrained(folder, safe_serialization=True)
        return "model"
    save_file({n: p.detach().contiguous().cpu() for n, p in trained.items()}, str(folder / TENSORS))
    return "tensors"


def load_trained(method: Method, folder: Path, ctx: ModelContext) -> nn.Module:
    """What `save_trained` wrote: the whole model from the folder, or the method's base with the tensors over it."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / TENSORS).exists():
        import torch
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            folder, dtype=torch.float32, attn_implementation=ctx.attention_in_use()).to(ctx.device)
    model = method.load_model(ctx)
    tensors = load_file(str(folder / TENSORS), device=str(ctx.device))
    unknown = set(tensors) - set(model.state_dict())
    if unknown:
        raise ValueError(f"{folder / TENSORS} holds tensors the model has not: {', '.join(sorted(unknown)[:5])}")
    model.load_state_dict(tensors, strict=False)
    return model


def folder_bytes(folder: Path) -> int:
    """The size of every file under `folder`, in bytes."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
