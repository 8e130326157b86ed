"""The fused_gelu speed-up: GPT-2's `gelu_new` loaded as PyTorch's fused kernel of the same tanh formula, unless
ablated; the same loss either way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import methods
from methods import ModelContext
from runners.data.batches import Collator, TokenizedSplit
from runners.data.models import load_tokenizer

CPU = torch.device("cpu")


@pytest.mark.parametrize("fused, activation", [(True, "gelu_pytorch_tanh"), (False, "gelu_new")])
def test_the_model_loads_with_the_activation_the_setting_says(fused, activation, tiny_model_dir):
    model = methods.get("full")().build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, fused_gelu=fused))
    assert model.config.activation_function == activation
    act = model.transformer.h[0].mlp.act
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(act(x), torch.nn.functional.gelu(x, approximate="tanh"), atol=1e-6, rtol=1e-5)


def test_another_activation_is_left_alone(tmp_path, tiny_model_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50257,
                               activation_function="relu")).save_pretrained(tmp_path)
    assert ModelContext(str(tmp_path), 2, 50256, CPU).activation() == {}
    assert ModelContext(str(tiny_model_dir), 2, 50256, CPU).activation() == {
        "activation_function": "gelu_pytorch_tanh"}


def test_same_loss_to_five_digits_over_a_training_step(tiny_model_dir):
    texts = ["a great film", "an awful film , sadly", "it was fine", "great great great fun"]
    split = TokenizedSplit.from_texts(texts, [1, 0, 1, 1], load_tokenizer(str(tiny_model_dir)), 16)
    batch = Collator(split, 50256, "right", CPU)(np.arange(4))
    losses = {}
    for fused in (True, False):
        torch.manual_seed(0)
        model = methods.get("full")().build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, fused_gelu=fused))
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        before = model(**batch).loss
        before.backward()
        optimizer.step()
        with torch.no_grad():
            after = model(**batch).loss
        losses[fused] = (before.item(), after.item())
    assert losses[True][0] != losses[True][1]  # the step changed the model
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)
