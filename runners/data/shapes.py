"""Model shapes with random weights, built from a config in the code (no download): for measuring speed and memory,
never accuracy."""
from __future__ import annotations

from pathlib import Path


def gpt2_shape(tokenizer: str, cache: Path) -> Path:
    """A folder holding GPT-2-small's architecture with random weights (seed 0) and GPT-2's tokenizer files."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = cache / "gpt2-shape-random"
    if not (folder / "model.safetensors").exists():
        import torch

        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
        AutoTokenizer.from_pretrained(tokenizer).save_pretrained(folder)
    return folder
