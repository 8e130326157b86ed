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


def test_loraplus_puts_only_the_b_matrices_at_the_higher_rate(tiny_model_dir):
    method, model = build("loraplus", tiny_model_dir, ratio=8.0)
    fast, base = method.param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert fast["lr_scale"] == 8.0 and "lr_scale" not in base
    assert fast["params"] and all("lora_B" in names[id(p)] for p in fast["params"])
    assert all("lora_B" not in names[id(p)] for p in base["params"])
    assert len(fast["params"]) + len(base["params"]) == sum(p.requires_grad for p in model.parameters())


def test_lastk_trains_the_top_blocks_only(tiny_model_dir):
    _, model = build("lastk", tiny_model_dir, layers=1)
    trains = {n.split(".h.")[1].split(".")[0] for n, p in model.named_parameters() if p.requires_grad and ".h." in n}
    assert trains == {"1"}
    with pytest.raises(ValueError, match="has only 2 blocks"):
        build("lastk", tiny_model_dir, layers=3)


def test_virtual_token_methods_pad_on_the_left():
    assert {n for n, cls in methods.registered().items() if cls.padding_side == "left"} == {
        "prefix", "prompt", "ptuning"}
