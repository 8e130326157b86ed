"""The method contract, checked for every registered method on a tiny GPT-2 on the CPU."""
from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

import methods
from methods import ModelContext
from runners import compare
from runners.data.batches import Collator, TokenizedSplit
from runners.data.models import load_tokenizer as _load_tokenizer
from runners.job.loop import evaluate, train
from runners.measure import environment as env
from runners.measure import flops, memory
from runners.settings.config import RunConfig

ALL = sorted(methods.registered())
PAD = 50256

# A learnable toy: the label is the sentiment word, whatever the filler around it.
TOY = [("a great film", 1), ("an awful film", 0), ("great", 1), ("awful", 0), ("it was great fun", 1),
       ("it was awful , sadly", 0), ("great great", 1), ("awful awful awful", 0)]


load_tokenizer = functools.cache(_load_tokenizer)  # one load of the tiny model's tokenizer (0.3 s), not one a test


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
    assert method.trains(), f"{name} must declare which parameters it trains"
    named = dict(model.named_parameters())
    trains = {n for n, p in named.items() if p.requires_grad}
    declared = {n for n in named if any(part in n for part in method.trains())}
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
def test_the_optimizer_holds_exactly_the_trainable_parameters_and_the_accounting_adds_up(name, tiny_model_dir):
    method, model = build(name, tiny_model_dir)
    groups = [{k: v for k, v in g.items() if k != "lr_scale"} for g in method.param_groups(model)]  # as the loop does
    optimizer = method.make_optimizer(groups, lr=1e-3, fused=False)
    assert isinstance(optimizer, torch.optim.Optimizer)
    held = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(held) == len(set(map(id, held))), "a parameter is in two groups"
    assert set(map(id, held)) == {id(p) for p in model.parameters() if p.requires_grad}
    trainable, total = env.count_parameters(model, method.stored_values_per_element)
    assert 0 < trainable <= total
    assert method.optimizer_state_bytes(model) >= 0
    assert all(isinstance(method.weight_kind(p), str) for p in model.parameters())
    assert method.unseen_forward_flops(model, 64) >= 0


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


@pytest.mark.parametrize("name", ALL)
def test_padding_does_not_change_predictions(name, tiny_model_dir):
    """A text's logits are the same alone and beside a much longer one, on the side the method pads."""
    method, model = build(name, tiny_model_dir)
    model.eval()
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = ["great", "it was an awful , awful film and I would not watch it again"]
    split = TokenizedSplit.from_texts(texts, [1, 0], tokenizer, 32)
    collate = Collator(split, PAD, method.padding_side, torch.device("cpu"))
    with torch.inference_mode():
        alone = model(**collate(np.array([0]))).logits
        padded = model(**collate(np.array([0, 1]))).logits[:1]
    assert split.lengths[1] - split.lengths[0] >= 10
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)


def test_every_method_runs_through_compare_into_the_table(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                          in_process):
    """One comparison over the whole registry: every method gets an `ok` record and a row in the table."""
    results = tmp_path / "results"
    assert compare.main(["--methods", ",".join(ALL), "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir),
                         "--budget", "32samples", "--batch-size", "16", "--eval-limit", "12", "--quiet",
                         "--results", str(results)]) == 0
    recs = {r["method"]["label"]: r for r in
            (json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json"))}
    assert sorted(recs) == ALL
    for name, r in recs.items():
        assert r["status"] == "ok", f"{name}: {r['error']}"
        assert r["method"]["name"] == name and r["measurements"]["steps"] == 2
    table = (results / "tweets" / "comparison.md").read_text()
    assert all(f"| {name} " in table for name in ALL)


def test_qlora_trains_adapters_on_a_4bit_base(tiny_model_dir):
    from bitsandbytes.nn import Linear4bit

    method, model = build("qlora", tiny_model_dir)
    quantized = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(quantized) == 2 * 4  # 2 layers x (c_attn, attn c_proj, c_fc, mlp c_proj)
    assert all(m.weight.quant_type == "nf4" and not m.weight.requires_grad for m in quantized)
    assert model.is_gradient_checkpointing


def test_a_4bit_base_counts_as_many_parameters_as_its_fp32_original(tiny_model_dir):
    (qlora, quantized), (lora, plain) = build("qlora", tiny_model_dir), build("lora", tiny_model_dir)
    assert env.count_parameters(quantized, qlora.stored_values_per_element) == env.count_parameters(
        plain, lora.stored_values_per_element)
    kinds = memory.breakdown(quantized, 0, 0.0, qlora.weight_kind)["weights_mib"]
    assert set(kinds) == {"4-bit packed", "float32"}  # the frozen base, and the adapters, head and norms


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


@pytest.mark.parametrize("name", ALL)
def test_saved_model_loads_back_with_the_same_logits(name, tiny_model_dir, tmp_path):
    """`save` then `load_saved` (what --save-models and runners.predict do) gives the trained model's logits."""
    method, model = build(name, tiny_model_dir)
    data = toy_data(tiny_model_dir)
    run_steps(method, model, data, steps=2, lr=1e-2)  # trained: adapters and heads away from their initial values
    collate = Collator(data["test"], PAD, method.padding_side, torch.device("cpu"))
    batch = collate(np.arange(len(TOY)))
    batch.pop("labels")
    served = method.deployed(model).eval()
    with torch.inference_mode():
        before = served(**batch).logits
    kind = method.save(model, tmp_path / "saved")
    assert kind in ("model", "tensors", "adapter")
    loaded = method.load_saved(tmp_path / "saved", ModelContext(str(tiny_model_dir), 2, PAD, torch.device("cpu")))
    with torch.inference_mode():
        after = loaded(**batch).logits
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    assert method.extra_tokens() >= 0 and method.mergeable in (True, False, None)
