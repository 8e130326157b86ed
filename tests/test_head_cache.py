"""`head:cache_features=true`: the body runs once per training example, and the probe learns what `head` does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import methods
from methods import ModelContext
from runners.data.batches import Collator, TokenizedSplit
from runners.data.models import load_tokenizer
from runners.job.loop import train
from runners.measure import flops
from runners.settings.config import RunConfig

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tiny_model_dir):
    texts = [f"text {i} " * (1 + i % 4) for i in range(10)]
    split = TokenizedSplit.from_texts(texts, [i % 2 for i in range(10)], load_tokenizer(str(tiny_model_dir)), 24)
    return {"train": split, "validation": split, "test": split}


def build(tiny_model_dir, spec):
    torch.manual_seed(0)
    method = methods.parse_spec(spec).method
    return method, method.build(ModelContext(str(tiny_model_dir), 2, 50256, CPU))


def test_cached_features_are_what_the_model_scores(tiny_model_dir, data):
    _, plain = build(tiny_model_dir, "head")
    _, cached = build(tiny_model_dir, "head:cache_features=true")
    batch = Collator(data["train"], 50256, "right", CPU, with_ids=True)(np.arange(2, 7))
    ids = batch.pop("example_ids")
    with torch.no_grad():
        expected = plain.eval()(**batch).logits
        assert torch.allclose(cached.eval()(**batch).logits, expected, atol=1e-6)  # evaluation: no cache
        cached.train()
        assert not cached.model.base_model.training  # the body never drops out
        assert torch.allclose(cached(**batch, example_ids=ids).logits, expected, atol=1e-6)  # fills the cache
        assert cached.cached[2:7].all() and not cached.cached[:2].any()  # rows 0, 1 not seen yet


def test_the_body_runs_once_per_example(tiny_model_dir, data):
    method, model = build(tiny_model_dir, "head:cache_features=true")
    calls = []
    model.model.base_model.register_forward_hook(lambda m, args, out: calls.append(1))
    config = RunConfig(method="head:cache_features=true", seed=0, budget="3epochs", batch_size=4,
                       checkpoints=(1.0,))
    flop_model = flops.measure(model, CPU)
    calls.clear()
    res = train(model, method, data, config, lr=1e-3, pad_id=50256, num_labels=2, device=CPU, flops=flop_model,
                quiet=True)
    assert res.spent.samples == 30 and np.isfinite(res.final_loss)
    # 3 batches of the first epoch, then none in the next two, then one batch of the final validation
    assert len(calls) == 3 + 1
    assert model.cached[:10].all()


def test_without_dropout_it_learns_what_head_learns(tiny_model_dir, data):
    weights = {}
    for spec in ("head", "head:cache_features=true"):
        method, model = build(tiny_model_dir, spec)
        assert model.config.resid_pdrop > 0  # the tiny model drops out: switch it off for this comparison
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        config = RunConfig(method=spec, seed=0, budget="2epochs", batch_size=4, checkpoints=(1.0,))
        train(model, method, data, config, lr=1e-3, pad_id=50256, num_labels=2, device=CPU,
              flops=flops.measure(model, CPU), quiet=True)
        weights[spec] = next(p for n, p in model.named_parameters() if p.requires_grad).detach()
    torch.testing.assert_close(weights["head:cache_features=true"], weights["head"], atol=1e-6, rtol=1e-5)
