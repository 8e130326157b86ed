"""`runners.bench` measures our loop and a Trainer peer side by side and writes the comparison (no timing asserted);
our runs are the worker's, as in `runners.compare`, and the table is read from their records."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from runners import bench, compare
from runners.execute.serial import InProcessExecutor
from runners.job import peers, worker
from runners.measure import environment as env
from runners.measure import peaks


def _records(folder) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native(request, monkeypatch) -> bool:
    """The CPU has native bf16, or has not (faked: both branches on any machine)."""
    monkeypatch.setattr(env, "cpu_native_bf16", lambda: (request.param, f"faked {request.param}"))
    return request.param


def test_bench_writes_ours_and_the_peers_against_the_measured_peaks(native, tmp_path, tiny_model_dir, tweets_dir,
                                                                     cache_dir, monkeypatch):
    """Every row's MFU against the measured peak of its precision, the peers' ratios with their precision named, our
    bf16 rows against their fp32 twins. In this process (ours and the peers), so that the faked CPU holds."""
    monkeypatch.setattr(bench, "Executor", InProcessExecutor)
    monkeypatch.setattr(bench, "measure_peer", peers.run_peer)
    monkeypatch.setattr(peaks, "PEAK_SIZES", {"cpu": (64, 128)})
    out = tmp_path / "bench"
    assert bench.main(["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--samples", "64",
                       "--batch-size", "16", "--methods", "full,head", "--peers", "trainer-seed,trainer-tuned",
                       "--with-fp32", "--results", str(out)]) == 0
    df = pd.read_csv(out / "tweets-cpu.csv")
    bf16, fp32 = ("bf16", "fp32") if native else ("fp32", "fp32")
    expected = ([("ours", "full", "bf16"), ("ours", "full [no bf16]", "fp32"), ("ours", "head", "bf16"),
                 ("ours", "head [no bf16]", "fp32"), ("trainer-seed", "all weights (Trainer)", "fp32"),
                 ("trainer-tuned", "all weights (Trainer)", "bf16"), ("trainer-tuned", "all weights (Trainer)", "fp32")]
                if native else  # the CPU runs fp32 either way: no twin rows
                [("ours", "full", "fp32"), ("ours", "head", "fp32"), ("trainer-seed", "all weights (Trainer)", "fp32"),
                 ("trainer-tuned", "all weights (Trainer)", "fp32")])
    assert list(zip(df.runner, df.method, df.precision)) == expected
    assert "error" not in df and (df["samples/s"] > 0).all() and (df["peak MiB"] > 0).all()
    assert (df["MFU %"] > 0).all() and (df["HFU %"] > 0).all()
    head = df[df.method == "head"].iloc[0]
    assert not head["trains all"] and df[df.runner != "ours"]["trains all"].all()
    ratios = [c for c in df if c.startswith("× trainer")]
    assert ratios == (["× trainer-seed (fp32)", "× trainer-tuned (bf16)", "× trainer-tuned (fp32)"] if native else
                      ["× trainer-seed (fp32)", "× trainer-tuned (fp32)"])
    assert df["× trainer-seed (fp32)"][df.runner == "trainer-seed"].tolist() == [1.0]
    assert ("× own fp32" in df) is native
    if native:
        assert df["× own fp32"].iloc[0] == df["samples/s"].iloc[0] / df["samples/s"].iloc[1]
    assert list(df.batch) == [16] * (4 if native else 2) + [4, 32] + ([32] if native else [])
    md = (out / "tweets-cpu.md").read_text()
    assert f"our loop's precision here: {bf16}" in md and "measured at the start of this run" in md
    assert "fp32 " in md and "bf16 " in md and "GFLOP/s" in md and "6·N + 12·n_layer·d·T̄" in md
    records = {r["config"]["method"] + str(r["config"]["ablate"]): r for r in _records(out / "records")}
    full = records["full[]"]  # ours ran in the worker, which wrote its record
    assert full["status"] == "ok" and full["config"]["budget"] == "64samples"
    assert df["samples/s"].iloc[0] == full["measurements"]["samples_per_second"]


def test_peaks_are_measured_per_dtype():
    found = peaks.measure_peaks(torch.device("cpu"), sizes=(32, 64), tries=2)
    assert set(found) == {"float32", "bfloat16"}
    for p in found.values():
        assert set(p["by_size"]) == {32, 64} and p["peak"] == max(p["by_size"].values()) > 0


def test_peers_train_fp32_weights_from_a_float16_checkpoint(tmp_path, tiny_model_dir):
    """transformers 5 keeps a float16 checkpoint in float16 unless told: the peers pin fp32."""
    import shutil

    from transformers import AutoModelForCausalLM

    from runners.data.batches import TokenizedSplit
    from runners.data.models import load_tokenizer
    from runners.job.peers import run_trainer

    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float16).save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    split = TokenizedSplit.from_texts(["a", "b c", "d e f", "g"], [0, 1, 0, 1], load_tokenizer(str(tmp_path)), 16)
    for peer in ("trainer-seed", "trainer-tuned"):
        r = run_trainer(peer, str(tmp_path), split, samples=32 if peer == "trainer-tuned" else 4, num_labels=2,
                        pad_id=50256, max_length=16, device=torch.device("cpu"), bf16=False)
        assert r["dtype"] == "float32" and r["compute_dtype"] == "float32"


def test_model_flops_formula_matches_gpt2_small():
    from transformers import GPT2Config

    # GPT-2-small: 85M matmul weights in the blocks -> ~6 x 85M FLOPs per token, plus attention at T=128
    per_token = peaks.model_flops_per_token(GPT2Config(), 128)
    assert per_token == 6 * 12 * 12 * 768 ** 2 + 12 * 12 * 768 * 128
    assert 5.0e8 < per_token < 5.3e8
    # adapters: no weight gradients for the frozen weights; head: no backward through the body
    assert peaks.model_flops_per_token(GPT2Config(), 128, "adapters") == 4 * 12 * 12 * 768 ** 2 + 12 * 12 * 768 * 128
    assert peaks.model_flops_per_token(GPT2Config(), 128, "forward") == 2 * 12 * 12 * 768 ** 2 + 4 * 12 * 768 * 128


def test_ablation_measures_each_speedup_and_compile(tmp_path, tiny_model_dir, tweets_dir, cache_dir, monkeypatch):
    monkeypatch.setattr(env, "cpu_native_bf16", lambda: (True, "faked"))  # bf16 changes the loop on this CPU
    assert bench.Executor is compare.Executor  # one executor for both commands...
    monkeypatch.setattr(bench, "Executor", InProcessExecutor)  # (in this process: eight interpreter starts saved)
    jobs, real_run = [], worker.run

    def run(job):  # ...and one worker: every measurement of ours is a `worker.run`
        jobs.append(job)
        return real_run(job)

    monkeypatch.setattr(worker, "run", run)
    out = tmp_path / "bench"
    assert bench.main(["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--samples", "32",
                       "--batch-size", "8", "--methods", "head", "--ablate", "--results", str(out)]) == 0
    df = pd.read_csv(out / "tweets-cpu-ablation.csv")
    cpu_speedups = ["bucketing", "dynamic_padding", "async_loss", "fused_adamw", "sdpa", "fused_gelu", "bf16"]
    assert list(df.loop) == ["all on", *(f"no {n}" for n in cpu_speedups), "all off", "all on + torch.compile"]
    assert list(df.precision) == ["bf16"] * 7 + ["fp32", "fp32", "bf16"]  # pinned memory: CUDA only
    assert "error" not in df and (df["samples/s"] > 0).all()
    assert df["× all on"].iloc[0] == 1.0
    compiled = df.iloc[-1]
    assert compiled["compile s"] > 0 and df["compile s"].iloc[:-1].isna().all()
    assert compiled["break-even samples"] > 0  # a count, or inf ("never") where compiling did not pay
    assert "pinned_memory changes nothing on this device, so not measured here" in \
        (out / "tweets-cpu-ablation.md").read_text()
    assert len(jobs) == len(df) and [list(j.config.ablate) for j in jobs[1:8]] == [[n] for n in cpu_speedups]
    records = {r["run_id"]: r for r in _records(out / "records")}
    measured = [records[j.run_id]["measurements"] for j in jobs]
    assert df["samples/s"].tolist() == [m["samples_per_second"] for m in measured]  # the table is the records'
    assert compiled["compile s"] == measured[-1]["compile_seconds"]
