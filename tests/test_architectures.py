"""The method contract on every architecture the lab is held to (tests/architectures.py: five decoders, four
encoders, tiny and random): each registered method either is refused up front, from the model's config alone, with
its one-line reason, or builds, trains only what it declares, keeps a prediction whatever the padding, and saves a
model that loads back with the same logits. GPT-2, the default, is held to the same and more by
tests/test_contract.py on the suite's tiny GPT-2, so it is not repeated here."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import methods
from methods import ModelContext
from methods.architecture import ArchitectureError, describe_config
from runners.data.batches import Collator, TokenizedSplit
from runners.data.models import load_tokenizer
from runners.job import loop
from runners.job.loop import train
from runners.measure import flops
from runners.settings.config import RunConfig

from architectures import ARCHITECTURES, write_tiny

ALL = sorted(methods.registered())
TOY = ["a great film", "an awful film", "great", "awful", "it was great fun", "it was awful , sadly"]
# What is refused where, and why (the reason's start): the table the closing note and docs/models.md repeat.
REFUSED = {
    **{(a, "bitfit"): "has no bias terms in its body" for a in ("llama", "qwen3", "modernbert")},
    **{(a, "prefix"): "forward takes no key/value cache" for a in ("modernbert", "deberta-v2")},
}
# Fails inside transformers when the loop autocasts to bf16: DeBERTa-v2 masks its attention scores (bf16) with the
# smallest value of the query's dtype, fp32 where these adapters return their input's dtype.
BF16_UPSTREAM = {("deberta-v2", m) for m in ("fourierft", "qlora", "vera")}
SMALL = {"fourierft": {"n_frequency": 64}}  # the tiny models' 32×16 projections have 512 entries, not 1000


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    made = {}

    def folder(arch: str):
        if arch not in made:
            made[arch] = write_tiny(arch, tmp_path_factory.mktemp(arch))
        return made[arch]
    return folder


@functools.cache  # one tokenizer load per architecture, not per test (0.3 s each)
def _data(folder):
    tokenizer = load_tokenizer(str(folder))
    split = TokenizedSplit.from_texts(TOY, [1, 0, 1, 0, 1, 0], tokenizer, 32)
    return tokenizer.pad_token_id, {"train": split, "validation": split, "test": split}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "gpt2"])  # GPT-2's: tests/test_contract.py
def test_a_method_runs_on_every_architecture_or_is_refused_up_front(arch, name, folders):
    folder = folders(arch)
    cls = methods.get(name)
    method = cls(cls.Params(**SMALL.get(name, {})))
    pad, data = _data(folder)
    ctx = ModelContext(str(folder), 2, pad, torch.device("cpu"))
    why = method.applies_to(describe_config(str(folder), 2))
    if (arch, name) in REFUSED:
        assert why and REFUSED[arch, name] in why and "\n" not in why, why
        with pytest.raises(ArchitectureError, match="cannot run here"):
            method.build(ctx)  # a job that reaches a worker anyway is refused there, before loading
        return
    assert why is None, why
    torch.manual_seed(0)
    model = method.build(ctx)
    named = dict(model.named_parameters())
    trains = {n for n, p in named.items() if p.requires_grad}
    assert trains == {n for n in named if any(part in n for part in method.trains())}
    assert any(h in n for h in method.arch.head for n in trains), "every method trains the classification head"
    before = {n: p.detach().clone() for n, p in named.items()}
    cfg = RunConfig(method=name, seed=0, budget="2steps", batch_size=6, warmup=0.0, checkpoints=(1.0,),
                    ablate=("bf16",) if (arch, name) in BF16_UPSTREAM else ())
    train(model, method, data, cfg, lr=1e-2, pad_id=pad, num_labels=2, device=torch.device("cpu"),
          flops=flops.FlopModel(1.0, 0.0), quiet=True)  # counted per architecture by test_compare_on_any_model
    for n, p in model.named_parameters():  # two steps: LoRA's A moves from the second on
        assert (not torch.equal(before[n], p.detach())) == p.requires_grad, n

    collate = Collator(data["test"], pad, method.padding_side, torch.device("cpu"))
    batch = {k: v for k, v in collate(np.arange(len(TOY))).items() if k != "labels"}
    alone = {k: v for k, v in collate(np.array([2])).items() if k != "labels"}  # "great", unpadded
    served = method.deployed(model).eval()
    with torch.inference_mode():
        logits, single = served(**batch).logits, served(**alone).logits
    torch.testing.assert_close(logits[2:3], single, atol=1e-5, rtol=1e-4)  # padding changes no prediction
    method.save(model, folder.parent / f"saved-{arch}-{name}")
    loaded = method.load_saved(folder.parent / f"saved-{arch}-{name}", ctx)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(**batch).logits, logits, atol=1e-5, rtol=1e-4)
    modules = method.modules()
    assert all(names for names in modules.values()), modules


@pytest.mark.parametrize("name", sorted(m for _, m in BF16_UPSTREAM))
def test_deberta_fails_upstream_under_bf16_autocast_with_adapters_that_keep_fp32(name, folders, monkeypatch):
    """The known failure, on either kind of CPU: bf16 autocast is forced here where the CPU has no native bf16.
    When transformers fixes it, this fails, and BF16_UPSTREAM (and docs/models.md) can go."""
    folder = folders("deberta-v2")
    cls = methods.get(name)
    method = cls(cls.Params(**SMALL.get(name, {})))
    pad, data = _data(folder)
    model = method.build(ModelContext(str(folder), 2, pad, torch.device("cpu"), compute_dtype="bfloat16"))
    monkeypatch.setattr(loop, "autocast_for", lambda device, bf16: torch.autocast("cpu", dtype=torch.bfloat16))
    cfg = RunConfig(method=name, seed=0, budget="1steps", batch_size=6, warmup=0.0, checkpoints=(1.0,))
    with pytest.raises(RuntimeError, match="cannot be converted to type c10::BFloat16 without overflow"):
        train(model, method, data, cfg, lr=1e-2, pad_id=pad, num_labels=2, device=torch.device("cpu"),
              flops=flops.FlopModel(1.0, 0.0), quiet=True)


def test_gpt2_adapts_the_modules_its_methods_named_before_roles(folders):
    """GPT-2 keeps its run ids and numbers: each role resolves to the very modules the GPT-2 names matched (peft
    matches a name by its end): LoRA's c_attn, c_proj, c_fc; IA³'s c_attn and mlp.c_proj; LN tuning's norms."""
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import AutoModelForSequenceClassification

    folder = folders("gpt2")
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    names = [n for n, _ in model.named_modules()]
    arch = describe_config(str(folder), 2)

    def matched(suffixes):
        return [n for n in names if check_target_module_exists(type("C", (), {"target_modules": suffixes,
                                                                               "layers_to_transform": None})(), n)]
    assert arch.modules(("attention", "mlp")) == matched(["c_attn", "c_proj", "c_fc"])
    assert arch.modules(("kv", "mlp_out")) == matched(["c_attn", "mlp.c_proj"])
    assert arch.modules(("mlp_out",)) == matched(["mlp.c_proj"])
    assert list(arch.norms) == matched(["ln_1", "ln_2", "ln_f"])
    assert arch.head == ("score",) and arch.top == ("transformer.ln_f",)
