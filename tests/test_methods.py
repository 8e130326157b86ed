"""Behaviour particular to some methods, beyond the registry-wide contract."""
from __future__ import annotations

import pytest
import torch
from test_contract import build, run_steps, toy_data

import methods


def test_adalora_prunes_ranks_to_its_budget_over_the_run(tiny_model_dir):
    method, model = build("adalora", tiny_model_dir, init_r=4, r=2, tinit=0.1, tfinal=0.3)
    run_steps(method, model, toy_data(tiny_model_dir), steps=20, lr=1e-2)
    pattern = model.peft_config["default"].rank_pattern
    assert pattern, "the final ranks were never fixed"
    kept = sum(int(torch.as_tensor(mask).sum()) for mask in pattern.values())
    assert len(pattern) == 2 * 4  # 2 layers x (c_attn, attn.c_proj, c_fc, mlp.c_proj): "c_proj" matches both
    assert kept <= 2 * len(pattern) < 4 * len(pattern)  # pruned from init_r=4 to an average of r=2


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_loraplus_groups_match_peft(tiny_model_dir, weight_decay):
    """Each trainable parameter gets the learning-rate multiplier and weight decay peft's LoRA+ optimizer gives it."""
    from peft.optimizers import create_loraplus_optimizer

    method, model = build("loraplus", tiny_model_dir, ratio=8.0, weight_decay=weight_decay,
                          targets=("c_attn", "c_fc", "wte"))  # wte: a LoRA embedding, peft's fourth group
    for name, param in model.named_parameters():  # 1-D parameters that train: LayerNorm, and biases outside it
        if "ln_f" in name or name.endswith("h.0.mlp.c_proj.bias"):
            param.requires_grad_(True)
    names = {id(p): n for n, p in model.named_parameters()}
    lr = method.params.lr

    def by_name(groups, rate) -> dict[str, tuple[float, float]]:
        return {names[id(p)]: (round(rate(g) / lr, 9), g["weight_decay"]) for g in groups for p in g["params"]}

    ours = by_name(method.param_groups(model), lambda g: g.get("lr_scale", 1.0) * lr)
    peft = by_name(create_loraplus_optimizer(model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=8.0,
                                             loraplus_weight_decay=weight_decay).param_groups, lambda g: g["lr"])
    assert ours == peft
    assert len(ours) == sum(p.requires_grad for p in model.parameters())
    assert {n for n, (scale, _) in ours.items() if scale == 8.0} == {
        n for n, p in model.named_parameters() if p.requires_grad and ("lora_B" in n or p.ndim == 1)
        and "lora_embedding" not in n}
    assert ours["base_model.model.transformer.ln_f.bias"] == (8.0, 0.0)  # peft: no decay on biases and LayerNorm
    assert ours["base_model.model.transformer.h.0.mlp.c_proj.bias"] == (8.0, 0.0)
    assert ours["base_model.model.transformer.h.0.attn.c_attn.lora_B.default.weight"] == (8.0, weight_decay)


def test_lastk_trains_the_top_blocks_only(tiny_model_dir):
    _, model = build("lastk", tiny_model_dir, layers=1)
    trains = {n.split(".h.")[1].split(".")[0] for n, p in model.named_parameters() if p.requires_grad and ".h." in n}
    assert trains == {"1"}
    with pytest.raises(ValueError, match="has only 2 blocks"):
        build("lastk", tiny_model_dir, layers=3)


def test_virtual_token_methods_pad_on_the_left_of_a_decoder_and_the_right_of_an_encoder():
    from methods.architecture import Architecture

    assert {n for n, cls in methods.registered().items() if cls().padding_side == "left"} == {
        "prefix", "prompt", "ptuning"}
    prompt = methods.get("prompt")()
    prompt.arch = Architecture(model_type="bert", kind="encoder", body="bert", blocks="bert.encoder.layer", depth=2)
    assert prompt.padding_side == "right"  # an encoder scores its first position, a virtual token: pads go right


def test_prefix_reaches_attention_on_the_installed_transformers(tiny_model_dir, recwarn):
    """peft hands the prefix to GPT-2 as a key/value cache, under whichever keyword the installed transformers takes
    (`past_key_values`, or `cache` from 5.24), without a deprecation warning."""
    from runners.data.models import load_tokenizer

    method, model = build("prefix", tiny_model_dir)
    model.eval()
    batch = load_tokenizer(str(tiny_model_dir))(["a great film"], return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits
        model.prompt_encoder["default"].embedding.weight.add_(1.0)
        after = model(**batch).logits
    assert not torch.allclose(before, after), "the prefix does not reach the model"
    assert not [w for w in recwarn if "past_key_values" in str(w.message)]


def test_prefix_renames_past_key_values_only_for_a_model_that_takes_cache():
    import inspect

    from torch import nn

    from methods.prefix import accept_past_key_values

    class Renamed(nn.Module):  # transformers >= 5.24
        def forward(self, input_ids=None, cache=None, **kwargs):
            return cache

    class Named(nn.Module):  # transformers < 5.24
        def forward(self, input_ids=None, past_key_values=None, **kwargs):
            return past_key_values

    renamed, named = Renamed(), Named()
    accept_past_key_values(renamed)
    accept_past_key_values(named)
    assert "past_key_values" in inspect.signature(renamed.forward).parameters  # what peft looks for
    assert renamed(input_ids=1, past_key_values="kv") == "kv" and renamed(cache="kv") == "kv"
    assert "forward" not in vars(named) and named(past_key_values="kv") == "kv"
