"""Tiny random models of the architectures the lab is held to, built from configs (no download): five decoders
and four encoders, each two blocks, 32 wide, with GPT-2's tokenizer (its vocabulary, 50,257 ids, sizes every
embedding so that any text tokenizes into range)."""
from __future__ import annotations

from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"
PAD = 50256  # GPT-2's eos, the pad of every model here (what runners.data.models.load_tokenizer sets)
ROBERTA_PAD = 1
VOCAB = 50257
_SIZE = dict(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4, vocab_size=VOCAB,
             max_position_embeddings=128)
_IDS = dict(pad_token_id=PAD, bos_token_id=PAD, eos_token_id=PAD)


def configs() -> dict:
    import transformers as T

    return {
        "gpt2": T.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=128, vocab_size=VOCAB),
        "llama": T.LlamaConfig(**_SIZE, num_key_value_heads=2, **_IDS),
        "qwen3": T.Qwen3Config(**_SIZE, num_key_value_heads=2, head_dim=8, **_IDS),
        "gpt_neox": T.GPTNeoXConfig(**_SIZE, **_IDS),
        "opt": T.OPTConfig(**{**_SIZE, "intermediate_size": None}, ffn_dim=64, word_embed_proj_dim=32, **_IDS),
        "bert": T.BertConfig(**_SIZE, pad_token_id=PAD),
        # RoBERTa numbers positions from its pad id + 1: its pad is a low id (1, as in roberta-base's vocabulary)
        "roberta": T.RobertaConfig(**_SIZE, pad_token_id=ROBERTA_PAD, bos_token_id=0, eos_token_id=2),
        "modernbert": T.ModernBertConfig(**_SIZE, global_attn_every_n_layers=1, **_IDS, cls_token_id=PAD,
                                         sep_token_id=PAD),
        "deberta-v2": T.DebertaV2Config(**_SIZE, pad_token_id=PAD),
    }


ARCHITECTURES = ("gpt2", "llama", "qwen3", "gpt_neox", "opt", "bert", "roberta", "modernbert", "deberta-v2")
DECODERS = ("gpt2", "llama", "qwen3", "gpt_neox", "opt")


def write_tiny(name: str, folder: Path) -> Path:
    """A tiny random `name` model (seed 0) saved as safetensors into `folder`, with GPT-2's tokenizer files."""
    from transformers import AutoModel, GPT2TokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    AutoModel.from_config(configs()[name]).save_pretrained(folder)
    tokenizer = GPT2TokenizerFast.from_pretrained(FIXTURES / "tokenizer")
    if name == "roberta":
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(ROBERTA_PAD)
    tokenizer.save_pretrained(folder)  # tokenizer_config.json names its class: AutoTokenizer needs no model type
    return folder


