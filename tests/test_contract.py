"""The method contract, checked for every registered method on a tiny GPT-2 on the CPU."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import methods
from methods import ModelContext
from runners import flops
from runners.batches import Collator, TokenizedSplit
from runners.config import RunConfig
from runners.models import load_tokenizer
from runners.train import evaluate, train

ALL = sorted(methods.registered())
PAD = 50256

# A learnable toy: the label is the sentiment word, whatever the filler around it.
TOY = [("a great film", 1), ("an awful film", 0), ("great", 1), ("awful", 0), ("it was great fun", 1),
       ("it was awful , sadly", 0), ("great great", 1), ("awful awful awful", 0)]


def build(name: str, model_dir, **overrides):
    cls = methods.get(name)
    method = cls(cls.Params(**overrides))
    torch.manual_seed(0)
    model = method.build(ModelContext(str(model_dir), 2, PAD, torch.device("cpu")))
    return method, model


def toy_data(model_dir) -> dict[str, TokenizedSplit]:
    texts, labels = zip(*TOY)
    split = TokenizedSplit.from_texts(list(texts), list(labels), load_tokenizer(str(model_dir)), 32)
    return {"train": split, "validation": split, "test": split}


def run_steps(method, model, data, steps: int, lr: float):
    cfg = RunConfig(method=method.name, seed=0, budget=f"{steps}steps", batch_size=8, warmup=0.0,
                    checkpoints=(1.0,))
    return train(model, method, data, cfg, lr=lr, pad_id=PAD, num_labels=2, device=torch.device("cpu"),
                 flops=flops.measure(model, torch.device("cpu")), quiet=True)


@pytest.mark.parametrize("name", ALL)
def test_declared_parameters_train_and_the_rest_stay_frozen(name, tiny_model_dir):
    method, model = build(name, tiny_model_dir)
    assert method.trainable, f"{name} must declare which parameters it trains"
    named = dict(model.named_parameters())
    trains = {n for n, p in named.items() if p.requires_grad}
    declared = {n for n in named if any(part in n for part in method.trainable)}
    assert trains == declared, f"trains but undeclared: {trains - declared}; declared but frozen: {declared - trains}"
    assert any("score" in n for n in trains), "every method must train a classification head"


@pytest.mark.parametrize("name", ALL)
def test_a_step_changes_only_trainable_weights(name, tiny_model_dir):
    method, model = build(name, tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Two steps: LoRA's B starts at zero, so A only receives a gradient from the second step on.
    run_steps(method, model, toy_data(tiny_model_dir), steps=2, lr=1e-2)
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        assert changed == p.requires_grad, f"{n}: requires_grad={p.requires_grad} but changed={changed}"


@pytest.mark.parametrize("name", ALL)
def test_loss_falls_on_a_learnable_toy(name, tiny_model_dir):
    method, model = build(name, tiny_model_dir, dropout=0.0) if "dropout" in _fields(name) else build(
        name, tiny_model_dir)
    data = toy_data(tiny_model_dir)
    collate = Collator(data["test"], PAD, method.padding_side, torch.device("cpu"))
    before = evaluate(model, data["test"], collate, 8, torch.device("cpu"), 2)["loss"]
    run_steps(method, model, data, steps=30, lr=min(10 * method.params.lr, 1e-2))
    after = evaluate(model, data["test"], collate, 8, torch.device("cpu"), 2)["loss"]
    assert after < 0.7 * before, f"{name}: loss {before:.4f} -> {after:.4f}"


def test_qlora_trains_adapters_on_a_4bit_base(tiny_model_dir):
    from bitsandbytes.nn import Linear4bit

    method, model = build("qlora", tiny_model_dir)
    quantized = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(quantized) == 2 * 4  # 2 layers x (c_attn, attn c_proj, c_fc, mlp c_proj)
    assert all(m.weight.quant_type == "nf4" and not m.weight.requires_grad for m in quantized)
    assert model.is_gradient_checkpointing


def test_head_trains_exactly_the_score_matrix(tiny_model_dir):
    _, model = build("head", tiny_model_dir)
    trainable = [(n, p.numel()) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [("score.weight", 32 * 2)]


def test_describe_round_trips_through_params(tiny_model_dir):
    for name in ALL:
        cls = methods.get(name)
        described = cls().describe()
        assert set(described) == {f.name for f in dataclasses.fields(cls.Params)}
        assert described["lr"] > 0 and cls.summary


def _fields(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(methods.get(name).Params)}
