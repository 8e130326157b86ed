"""Each speed-up of the loop can be turned off, and turning it off changes how the loop runs but not what a
budget means; torch.compile gives the same model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import methods
from methods import ModelContext
from runners.core.errors import UserError
from runners.data.batches import Collator, TokenizedSplit, shuffled_batches
from runners.data.models import load_tokenizer
from runners.job.loop import train
from runners.measure import flops
from runners.measure.environment import measurable
from runners.settings.config import RunConfig
from runners.settings.speedups import SPEEDUPS, loop_label, parse_ablate

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tiny_model_dir):
    texts = [f"example number {i} " * (1 + i % 5) for i in range(12)]
    split = TokenizedSplit.from_texts(texts, [i % 2 for i in range(12)], load_tokenizer(str(tiny_model_dir)), 24)
    return {"train": split, "validation": split, "test": split}


def fit(tiny_model_dir, data, spec="full", budget="2epochs", **cfg):
    method = methods.parse_spec(spec).method
    config = RunConfig(method=spec, seed=0, budget=budget, batch_size=4, max_length=24, **cfg)
    torch.manual_seed(0)
    model = method.build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, attention=config.attention))
    res = train(model, method, data, config, lr=1e-3, pad_id=50256, num_labels=2, device=CPU,
                flops=flops.measure(model, CPU), quiet=True)
    return res, model


def test_ablate_names():
    assert parse_ablate("all") == tuple(sorted(SPEEDUPS))
    assert parse_ablate("sdpa, bucketing") == ("bucketing", "sdpa")
    assert parse_ablate("") == ()
    with pytest.raises(UserError, match="unknown speed-up 'bucket'"):
        parse_ablate("bucket")
    with pytest.raises(UserError, match="unknown speed-up"):
        RunConfig(method="head", seed=0, ablate=("nope",))
    assert loop_label((), False) == ""
    assert loop_label(("sdpa",), True) == " [no sdpa, compiled]"
    assert loop_label(parse_ablate("all"), False) == " [unoptimized loop]"
    # a record from before fused_gelu existed: its `--ablate all` named the others, and it ran gelu_new
    assert loop_label(tuple(n for n in SPEEDUPS if n != "fused_gelu"), False) == " [unoptimized loop]"
    assert loop_label(("bf16", "fused_gelu"), False) == " [no bf16+fused_gelu]"


@pytest.mark.parametrize("native", [True, False])
def test_measurable_speedups_on_the_cpu(native, monkeypatch):
    from runners.measure import environment as env

    monkeypatch.setattr(env, "cpu_native_bf16", lambda: (native, "faked"))
    names = measurable(CPU)
    assert "pinned_memory" not in names and ("bf16" in names) is native and "fused_gelu" in names
    assert measurable(torch.device("cuda")) == list(SPEEDUPS)


def test_loop_fields_leave_earlier_run_ids_alone():
    plain = RunConfig(method="head", seed=0)
    assert "ablate" not in plain.key() and "compile" not in plain.key()
    slow = RunConfig(method="head", seed=0, ablate=("sdpa",), compile=True)
    assert slow.key()["ablate"] == ("sdpa",) and slow.key()["compile"] is True
    assert (plain.attention, slow.attention) == ("sdpa", "eager")
    assert slow.experiment() == plain.experiment()  # the same comparison, run another way: one table


def test_every_speedup_off_keeps_the_budget(tiny_model_dir, data):
    fast, _ = fit(tiny_model_dir, data)
    slow, _ = fit(tiny_model_dir, data, ablate=parse_ablate("all"))
    for res in (fast, slow):
        assert (res.spent.steps, res.spent.samples) == (6, 24)
        assert res.spent.tokens == 2 * int(data["train"].lengths.sum())  # real tokens, padding not counted
        assert np.isfinite(res.final_loss)
    assert slow.spent.flops > fast.spent.flops  # padded to max_length, the same samples cost more compute


def test_padding_to_max_length(tiny_model_dir, data):
    collate = Collator(data["train"], 50256, "right", CPU, pad_to=24)
    batch = collate(np.array([0, 1]))
    assert batch["input_ids"].shape == (2, 24) and collate.width(np.array([0])) == 24
    assert batch["attention_mask"].sum().item() == int(data["train"].lengths[[0, 1]].sum())


def test_shuffled_batches_cover_the_epoch():
    batches = shuffled_batches(np.arange(10), 4, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))


def test_eager_attention_agrees_with_sdpa(tiny_model_dir, data):
    batch = Collator(data["train"], 50256, "right", CPU)(np.arange(6))
    logits = {}
    for attention in ("sdpa", "eager"):
        torch.manual_seed(0)
        model = methods.get("full")().build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, attention=attention))
        assert model.config._attn_implementation == attention
        with torch.no_grad():
            logits[attention] = model.eval()(**batch).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-5, rtol=1e-5)


def test_compiled_model_trains_and_reports_compile_time(tiny_model_dir, data):
    plain, plain_model = fit(tiny_model_dir, data, budget="3steps")
    compiled, compiled_model = fit(tiny_model_dir, data, budget="3steps", compile=True)
    assert compiled.compile_seconds > 0 and plain.compile_seconds == 0
    assert compiled.spent.steps == 3 and np.isfinite(compiled.final_loss)
    batch = Collator(data["train"], 50256, "right", CPU)(np.arange(5))
    with torch.no_grad():  # the compiled model computes what an uncompiled copy of its weights does
        ref = methods.get("full")().build(ModelContext(str(tiny_model_dir), 2, 50256, CPU))
        ref.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in compiled_model.state_dict().items()})
        torch.testing.assert_close(compiled_model.eval()(**batch).logits, ref.eval()(**batch).logits,
                                   atol=1e-5, rtol=1e-4)
