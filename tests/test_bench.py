"""`runners.bench` measures our loop and a Trainer peer side by side and writes the comparison (no timing asserted);
our runs are the worker's, as in `runners.compare`, and the table is read from their records."""
from __future__ import annotations

import json

import pandas as pd

from runners import bench, compare, worker
from runners.executor import InProcessExecutor


def _records(folder) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_bench_writes_ours_and_the_peer_with_ratios(tmp_path, tiny_model_dir, tweets_dir, cache_dir, capsys):
    out = tmp_path / "bench"
    assert bench.main(["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--samples", "64",
                       "--batch-size", "16", "--methods", "full", "--peers", "trainer-seed,trainer-tuned",
                       "--results", str(out)]) == 0
    df = pd.read_csv(out / "tweets-cpu.csv")
    assert list(df.runner) == ["ours", "trainer-seed", "trainer-tuned"] and df["trains all"].all()
    assert (df["samples/s"] > 0).all() and (df["real tokens/s"] > 0).all() and (df["peak MiB"] > 0).all()
    assert df["× trainer-seed"].iloc[1] == 1.0 and df["× ours, all weights"].iloc[0] == 1.0
    assert df["MFU %"].isna().all()  # no peak FLOP/s is claimed for a CPU
    assert list(df.batch) == [16, 4, 32]
    md = (out / "tweets-cpu.md").read_text()
    assert "omitted (no peak FLOP/s known for this device)" in md and "| trainer-seed " in md
    [record] = _records(out / "runs")  # ours ran in the worker's process, which wrote its record
    assert record["status"] == "ok" and record["config"]["budget"] == "64samples"
    assert df["samples/s"].iloc[0] == record["measurements"]["samples_per_second"]


def test_flops_formula_matches_gpt2_small():
    from transformers import GPT2Config

    # GPT-2-small: 85M matmul weights in the blocks -> ~6 x 85M FLOPs per token, plus attention at T=128
    per_token = bench.matmul_flops_per_token(GPT2Config(), 128)
    assert per_token == 6 * 12 * 12 * 768 ** 2 + 12 * 12 * 768 * 128
    assert 5.0e8 < per_token < 5.3e8


def test_ablation_measures_each_speedup_and_compile(tmp_path, tiny_model_dir, tweets_dir, cache_dir, monkeypatch):
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
    cpu_speedups = ["bucketing", "dynamic_padding", "async_loss", "fused_adamw", "sdpa"]  # bf16, pinning: CUDA only
    assert list(df.loop) == ["all on", *(f"no {n}" for n in cpu_speedups), "all off", "all on + torch.compile"]
    assert "error" not in df and (df["samples/s"] > 0).all()
    assert df["× all on"].iloc[0] == 1.0
    compiled = df.iloc[-1]
    assert compiled["compile s"] > 0 and df["compile s"].iloc[:-1].isna().all()
    assert compiled["break-even samples"] > 0  # a count, or inf ("never") where compiling did not pay
    assert "CUDA-only, so not measured here" in (out / "tweets-cpu-ablation.md").read_text()
    assert len(jobs) == len(df) and [j["config"]["ablate"] for j in jobs[1:6]] == [[n] for n in cpu_speedups]
    records = {r["run_id"]: r for r in _records(out / "runs")}
    measured = [records[j["run_id"]]["measurements"] for j in jobs]
    assert df["samples/s"].tolist() == [m["samples_per_second"] for m in measured]  # the table is the records'
    assert compiled["compile s"] == measured[-1]["compile_seconds"]
