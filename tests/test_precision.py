"""bf16 autocast on CPUs with native bf16, fp32 on the others: the decision, what the loop and QLoRA compute in, and
what every record says. The CPU's bf16 support is faked both ways, so both branches run on any machine."""
from __future__ import annotations

import json
from contextlib import nullcontext

import pytest
import torch

import methods
from methods import ModelContext
from runners import compare
from runners.data.batches import TokenizedSplit
from runners.data.models import load_tokenizer
from runners.job.loop import autocast_for, train
from runners.measure import environment as env
from runners.measure import flops
from runners.settings.config import RunConfig

CPU = torch.device("cpu")


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native(request, monkeypatch) -> bool:
    """The CPU has native bf16 (AVX512-BF16), or has not."""
    reason = "cpu has avx512_bf16" if request.param else "cpu has no native bf16 (avx512_bf16 or amx_bf16)"
    monkeypatch.setattr(env, "cpu_native_bf16", lambda: (request.param, reason))
    return request.param


@pytest.mark.parametrize("flags, expected", [
    ({"avx512f", "avx512_bf16"}, (True, "cpu has avx512_bf16")),
    ({"avx512f", "amx_bf16", "amx_tile"}, (True, "cpu has amx_bf16")),
    ({"avx512f", "avx512_bw", "avx2"}, (False, "cpu has no native bf16 (avx512_bf16 or amx_bf16)")),
    (set(), (False, "cpu has no native bf16 (avx512_bf16 or amx_bf16)")),
])
def test_native_bf16_is_read_from_the_cpu_flags(flags, expected, monkeypatch):
    monkeypatch.setattr(env, "_cpu_flags", lambda: flags)
    env.cpu_native_bf16.cache_clear()
    try:
        assert env.cpu_native_bf16() == expected
    finally:
        env.cpu_native_bf16.cache_clear()  # the real machine's answer for the tests after this one


def test_the_decision_and_what_records_say(native):
    p = env.precision(CPU)
    assert (p.autocast, p.dtype) == (native, torch.bfloat16 if native else torch.float32)
    off = env.precision(CPU, bf16=False)  # --ablate bf16: fp32 on every CPU
    assert (off.autocast, off.dtype, off.reason) == (False, torch.float32, "bf16 speed-up off (--ablate bf16)")
    info = env.device_info(CPU)
    assert info["compute_dtype"] == ("bfloat16" if native else "float32") and info["bf16_autocast"] is native
    assert info["bf16_reason"] == p.reason and info["type"] == "cpu" and info["threads"] >= 1
    assert env.device_info(CPU, bf16=False)["compute_dtype"] == "float32"
    assert p.name == str(p.dtype).removeprefix("torch.")  # the name the runner hands a method's ModelContext
    assert ModelContext("m", 2, 0, CPU, compute_dtype=p.name).dtype == p.dtype
    assert ModelContext("m", 2, 0, CPU).dtype == torch.float32  # unless told, a method computes in fp32


def test_autocast_computes_matmuls_in_the_decided_dtype(native):
    layer, x = torch.nn.Linear(8, 4), torch.randn(2, 8)
    ctx = autocast_for(CPU)
    assert isinstance(ctx, torch.autocast if native else nullcontext)
    with ctx:
        assert layer(x).dtype == (torch.bfloat16 if native else torch.float32)
    with autocast_for(CPU, bf16=False):
        assert layer(x).dtype == torch.float32


@pytest.fixture(scope="module")
def data(tiny_model_dir):
    texts = [f"example number {i} " * (1 + i % 4) for i in range(8)]
    split = TokenizedSplit.from_texts(texts, [i % 2 for i in range(8)], load_tokenizer(str(tiny_model_dir)), 24)
    return {"train": split, "validation": split, "test": split}


@pytest.mark.parametrize("name", ["full", "qlora"])
def test_a_training_step_runs_and_weights_stay_fp32(name, native, tiny_model_dir, data):
    method = methods.get(name)()
    torch.manual_seed(0)
    # the dtype the runner decides for this CPU (the worker does the same), handed to the method
    model = method.build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, compute_dtype=env.precision(CPU).name))
    cfg = RunConfig(method=name, seed=0, budget="2steps", batch_size=4, warmup=0.0, checkpoints=(1.0,))
    res = train(model, method, data, cfg, lr=1e-3, pad_id=50256, num_labels=2, device=CPU,
                flops=flops.measure(model, CPU), quiet=True)
    assert res.spent.steps == 2 and torch.isfinite(torch.tensor(res.final_loss))
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.dtype == torch.float32 for p in trained)  # autocast casts copies, not the weights
    if name == "qlora":  # the 4-bit base's dequantized matmuls follow the loop's precision
        from bitsandbytes.nn import Linear4bit

        dtypes = {m.compute_dtype for m in model.modules() if isinstance(m, Linear4bit)}
        assert dtypes == {torch.bfloat16 if native else torch.float32}


def test_qlora_compute_dtype_is_fp32_with_bf16_off(native, tiny_model_dir):
    from bitsandbytes.nn import Linear4bit

    dtype = env.precision(CPU, bf16=False).name
    model = methods.get("qlora")().build(ModelContext(str(tiny_model_dir), 2, 50256, CPU, bf16=False,
                                                      compute_dtype=dtype))
    assert {m.compute_dtype for m in model.modules() if isinstance(m, Linear4bit)} == {torch.float32}


def test_records_name_the_precision_and_bf16_off_is_its_own_row(native, tmp_path, tiny_model_dir, tweets_dir,
                                                                cache_dir, in_process, monkeypatch):
    """Through `runners.compare` and the worker: every record's device says what the run computed in, and the loop
    with bf16 on and off are two rows of one table. The model loads as the run's fused_gelu setting says."""
    built = []
    real_build = methods.Method.build

    def build(self, ctx):
        built.append(ctx)
        return real_build(self, ctx)

    monkeypatch.setattr(methods.Method, "build", build)
    results = tmp_path / "results"
    base = ["--methods", "full", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--budget",
            "16samples", "--batch-size", "8", "--eval-limit", "16", "--quiet", "--results", str(results)]
    assert compare.main(base) == 0
    assert compare.main([*base, "--ablate", "bf16,fused_gelu"]) == 0
    records = {tuple(r["config"]["ablate"]): r for r in
               (json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json"))}
    on, off = records[()], records[("bf16", "fused_gelu")]
    assert on["device"]["compute_dtype"] == ("bfloat16" if native else "float32")
    assert on["device"]["bf16_autocast"] is native
    assert off["device"]["compute_dtype"] == "float32" and off["device"]["bf16_autocast"] is False
    assert [(c.bf16, c.fused_gelu) for c in built] == [(True, True), (False, False)]
    table = (results / "tweets" / "comparison.md").read_text()
    assert "| full " in table and "| full [no bf16+fused_gelu] " in table


def test_a_revision_1_record_keeps_its_id_and_its_fp32_loop_and_never_shares_a_table_with_revision_2():
    from runners.settings.config import stable_hash
    from runners.settings.speedups import LOOP
    from runners.store import records as store
    from tests.conftest import FIXTURES

    v1 = json.loads((FIXTURES / "records" / "v1-with-ablate.json").read_text(), parse_constant=lambda c: None)
    old = store.parse(json.dumps(v1)).config
    assert old.loop == 1 and "loop" not in old.key()  # migrated to revision 1: the id it was written under holds
    old = RunConfig.from_dict({**old.to_dict(), "ablate": ()})  # the fixture's run had speed-ups off
    new = RunConfig.from_dict({**old.to_dict(), "loop": LOOP})
    assert LOOP >= 2 and new.key()["loop"] == LOOP and stable_hash(new.key()) != stable_hash(old.key())
    assert new.experiment() != old.experiment()  # a new loop's runs are a new experiment, never a row of the old one
    # what each revision computes: revision 1 had neither bf16 on the CPU nor the fused GELU
    assert (old.bf16(CPU), old.bf16("cuda"), old.speedup("fused_gelu")) == (False, True, False)
    assert (new.bf16(CPU), new.bf16("cuda"), new.speedup("fused_gelu")) == (True, True, True)
    off = RunConfig.from_dict({**new.to_dict(), "ablate": ("bf16", "fused_gelu")})
    assert (off.bf16(CPU), off.bf16("cuda"), off.speedup("fused_gelu")) == (False, False, False)
