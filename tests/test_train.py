"""The training loop: exact budgets, the validation curve, and divergence detection."""
from __future__ import annotations

import pytest
import torch

import methods
from methods import ModelContext
from runners.data.batches import TokenizedSplit
from runners.data.models import load_tokenizer
from runners.job.loop import Diverged, train
from runners.measure import flops
from runners.settings.config import RunConfig

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tiny_model_dir):
    texts = [f"example number {i} " * (1 + i % 4) for i in range(10)]
    split = TokenizedSplit.from_texts(texts, [i % 2 for i in range(10)], load_tokenizer(str(tiny_model_dir)), 24)
    return {"train": split, "validation": split, "test": split}


def fit(method, tiny_model_dir, data, budget, **cfg):
    torch.manual_seed(0)
    model = method.build(ModelContext(str(tiny_model_dir), 2, 50256, CPU))
    config = RunConfig(method=method.name, seed=0, budget=budget, batch_size=4, **cfg)
    return train(model, method, data, config, lr=1e-3, pad_id=50256, num_labels=2, device=CPU,
                 flops=flops.measure(model, CPU), quiet=True)


@pytest.mark.parametrize("budget, steps, samples", [
    ("2epochs", 6, 20),  # 10 examples in batches of 4, 4, 2, twice
    ("7steps", 7, 24),  # two epochs of 3 steps, then one batch of 4
    ("13samples", 4, 13),  # the last batch cut to one example
])
def test_budgets_are_exact(tiny_model_dir, data, budget, steps, samples):
    res = fit(methods.get("head")(), tiny_model_dir, data, budget)
    assert (res.spent.steps, res.spent.samples) == (steps, samples)
    assert res.spent.seconds > 0
    if budget == "2epochs":  # every example twice: real tokens counted, padding not
        assert res.spent.tokens == 2 * int(data["train"].lengths.sum())


def test_validation_curve_at_checkpoints(tiny_model_dir, data):
    res = fit(methods.get("head")(), tiny_model_dir, data, "8steps", checkpoints=(0.25, 0.5, 1.0))
    assert [c["steps"] for c in res.curve] == [2, 4, 8]
    assert [c["fraction"] for c in res.curve] == [0.25, 0.5, 1.0]
    assert all(0 <= c["val_accuracy"] <= 1 and c["val_loss"] > 0 for c in res.curve)


def test_divergence_is_caught_at_the_step_it_happened(tiny_model_dir, data):
    class Poisoned(methods.get("head")):
        def on_step(self, model, progress):
            if progress.step == 3:
                with torch.no_grad():
                    model.score.weight.fill_(float("nan"))

    with pytest.raises(Diverged, match="non-finite at step 4 "):
        fit(Poisoned(), tiny_model_dir, data, "30steps")


def test_flops_budget_stops_within_one_step(tiny_model_dir, data):
    method = methods.get("full")()
    torch.manual_seed(0)
    model = method.build(ModelContext(str(tiny_model_dir), 2, 50256, CPU))
    per_step = flops.measure(model, CPU).step(4, 24)  # an upper bound on one step here
    res = fit(method, tiny_model_dir, data, f"{20 * per_step:.6e}flops")
    assert 20 * per_step <= res.spent.flops < 21 * per_step
    assert res.curve[-1]["flops"] == res.spent.flops


def test_time_budget_stops_just_after_its_time(tiny_model_dir, data):
    res = fit(methods.get("head")(), tiny_model_dir, data, "2s", checkpoints=(0.5, 1.0))
    per_step = res.spent.seconds / res.spent.steps
    assert 2.0 <= res.spent.seconds < 2.0 + 5 * per_step + 0.5
    assert res.curve[0]["seconds"] >= 1.0  # the half-way checkpoint came after half the time
