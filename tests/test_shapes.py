"""The bench's model shapes: each builds from its config with random weights (no download), loads as a sequence
classifier, and embeds every id of the tokenizer it is given."""
from __future__ import annotations

import pytest
import torch

from runners.data.shapes import SHAPES, model_shape, shape_config, vocab_note

FIXTURE_TOKENIZER = "tests/fixtures/tokenizer"  # GPT-2's vocab.json and merges.txt: 50,257 ids
TINY = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=96, num_attention_heads=4)


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_shape_builds_once_and_classifies(name, tmp_path):
    from transformers import AutoModelForSequenceClassification

    tiny = {**TINY, **({"num_key_value_heads": 2, "head_dim": 16} if name in ("qwen3", "llama") else {})}
    folder = model_shape(name, FIXTURE_TOKENIZER, tmp_path, **tiny)
    assert model_shape(name, FIXTURE_TOKENIZER, tmp_path, **tiny) == folder  # built once: the same folder
    assert (folder / "tokenizer_config.json").exists() and len(list(tmp_path.iterdir())) == 1
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, pad_token_id=50256,
                                                               dtype=torch.float32)
    assert model.config.model_type == SHAPES[name].model_type
    assert model.config.vocab_size >= 50257  # raised to the tokenizer's where the shape's is smaller
    ids = torch.tensor([[50256 - 1, 11, 50256, 50256]])  # the tokenizer's largest ids embed
    logits = model(input_ids=ids, attention_mask=torch.tensor([[1, 1, 0, 0]])).logits
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()


def test_the_shapes_are_the_named_models():
    qwen, llama, bert, modern = (shape_config(n) for n in ("qwen3", "llama", "bert", "modernbert"))
    assert (qwen.hidden_size, qwen.intermediate_size, qwen.num_hidden_layers, qwen.num_attention_heads,
            qwen.num_key_value_heads, qwen.head_dim, qwen.vocab_size, qwen.tie_word_embeddings) == (
        1024, 3072, 28, 16, 8, 128, 151936, True)
    assert (llama.hidden_size, llama.intermediate_size, llama.num_hidden_layers, llama.num_attention_heads,
            llama.num_key_value_heads, llama.vocab_size) == (576, 1536, 30, 9, 3, 49152)
    assert (bert.hidden_size, bert.intermediate_size, bert.num_hidden_layers, bert.vocab_size) == (768, 3072, 12, 30522)
    assert (modern.hidden_size, modern.intermediate_size, modern.num_hidden_layers, modern.vocab_size) == (
        768, 1152, 22, 50368)
    assert shape_config("bert", vocab_at_least=50257).vocab_size == 50257
    assert vocab_note("bert", 50257) == ("vocabulary raised from 30,522 to 50,257 (the tokenizer's, so that every id "
                                         "has an embedding: +19,735 embedding rows, no FLOPs)")
    assert vocab_note("qwen3", 50257) == "vocabulary 151,936" and vocab_note("gpt2", 50257) == "vocabulary 50,257"
