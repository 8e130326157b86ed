"""Model shapes with random weights, built from a config in the code (no download): for measuring speed and memory,
never accuracy. Each is faithful to a named model's architecture (layers, widths, heads, key-value heads, MLP,
vocabulary); the tokenizer is whichever is given (GPT-2's here: no other can be downloaded)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runners.settings.config import stable_hash


@dataclass(frozen=True)
class Shape:
    """A named architecture: transformers' `model_type` and the config values that differ from its defaults."""

    title: str  # how tables name it
    model_type: str
    config: dict = field(default_factory=dict)
    encoder: bool = False  # bidirectional attention, classifies from the first token (BERT-style)


SHAPES = {
    # GPT2Config's defaults are GPT-2-small: 12 layers, 768 wide, 12 heads, MLP 4·768, vocabulary 50257
    "gpt2": Shape("GPT-2-small (124M)", "gpt2"),
    # Qwen/Qwen3-0.6B's config.json: GQA (16 query, 8 key-value heads of 128), SwiGLU MLP, tied embeddings
    "qwen3": Shape("Qwen3-0.6B", "qwen3", dict(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=True, hidden_act="silu")),
    # HuggingFaceTB/SmolLM2-135M's config.json: a Llama of 30 narrow layers, GQA (9 query, 3 key-value heads)
    "llama": Shape("SmolLM2-135M (Llama)", "llama", dict(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=True, hidden_act="silu")),
    # google-bert/bert-base-uncased: post-norm encoder, GELU MLP, a pooler on the first token
    "bert": Shape("BERT-base", "bert", dict(
        vocab_size=30522, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=512), encoder=True),
    # answerdotai/ModernBERT-base: GeGLU MLP, RoPE, global attention every third layer, local (128) between
    "modernbert": Shape("ModernBERT-base", "modernbert", dict(
        vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12,
        max_position_embeddings=8192, global_attn_every_n_layers=3, local_attention=128), encoder=True),
}


def shape_config(name: str, vocab_at_least: int = 0, **overrides):
    """The shape's transformers config; its vocabulary raised to `vocab_at_least` where smaller (a tokenizer's ids
    must all have an embedding), with `overrides` (smaller sizes, for tests)."""
    from transformers import AutoConfig

    shape = SHAPES[name]
    values = {**shape.config, **overrides}
    config = AutoConfig.for_model(shape.model_type, **values)
    config.vocab_size = max(config.vocab_size, vocab_at_least)
    return config


def model_shape(name: str, tokenizer: str, cache: Path, **overrides) -> Path:
    """A folder holding the shape's architecture with random weights (seed 0) and the tokenizer's files, made once
    per (shape, tokenizer, overrides) in `cache`. The body is saved (`AutoModel`): each method adds its own head."""
    import torch
    from transformers import AutoModel

    tok = load_any_tokenizer(tokenizer)
    config = shape_config(name, len(tok), **overrides)
    folder = cache / f"{name}-shape-{stable_hash({'config': config.to_dict(), 'vocab': tok.get_vocab()}, n=10)}"
    if not (folder / "model.safetensors").exists() and not (folder / "model.safetensors.index.json").exists():
        torch.manual_seed(0)
        AutoModel.from_config(config).save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


def vocab_note(name: str, tokenizer_size: int) -> str:
    """What the table says about the shape's vocabulary: raised to the tokenizer's where it was smaller."""
    own = SHAPES[name].config.get("vocab_size", shape_config(name).vocab_size)
    if own >= tokenizer_size:
        return f"vocabulary {own:,}"
    return (f"vocabulary raised from {own:,} to {tokenizer_size:,} (the tokenizer's, so that every id has an "
            f"embedding: +{tokenizer_size - own:,} embedding rows, no FLOPs)")


def load_any_tokenizer(path: str):
    """A tokenizer by hub id or folder; a folder holding only GPT-2's `vocab.json` and `merges.txt` (no config to
    name its class) is read as GPT-2's."""
    from transformers import AutoTokenizer, GPT2TokenizerFast

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        return GPT2TokenizerFast.from_pretrained(path)
