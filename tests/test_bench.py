"""`runners.bench` measures each of our runs beside its Trainer twin and writes the comparison (no timing asserted);
our runs are the worker's, as in `runners.compare`, and the table is read from their records and the twins'."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from runners import bench, compare
from runners.execute.serial import InProcessExecutor
from runners.job import twin, worker
from runners.measure import environment as env
from runners.measure import peaks
from runners.measure.flops import FlopModel


def _records(folder) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native(request, monkeypatch) -> bool:
    """The CPU has native bf16, or has not (faked: both branches on any machine)."""
    monkeypatch.setattr(env, "cpu_native_bf16", lambda: (request.param, f"faked {request.param}"))
    return request.param


@pytest.fixture
def measured_dtypes(monkeypatch) -> list:
    """The precisions the bench asks the peak probe for (measured at small sizes, as the real probe does)."""
    asked, real = [], peaks.measure_peaks
    monkeypatch.setattr(bench, "measure_peaks", lambda device, dtypes, **kw: asked.append(list(dtypes)) or
                        real(device, dtypes, sizes=(64, 128), **kw))
    return asked


def test_each_run_beside_its_twin_against_the_peak_of_its_precision(native, measured_dtypes, tmp_path,
                                                                     tiny_model_dir, tweets_dir, cache_dir,
                                                                     monkeypatch, capsys):
    """Every row is our run and its Trainer twin, which trains the same model on the very same batches (so the FLOPs
    our run counted are the twin's too); MFU against the measured peak of the row's precision, and only the
    precisions the rows run in are measured: on a CPU without native bf16, fp32 alone. In this process (ours and the
    twins), so that the faked CPU holds."""
    monkeypatch.setattr(bench, "Executor", InProcessExecutor)
    monkeypatch.setattr(bench, "measure_twin", twin.run_twin)
    out = tmp_path / "bench"
    assert bench.main(["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--samples", "48",
                       "--batch-size", "16", "--methods", "full,head,loraplus", "--with-fp32",
                       "--results", str(out)]) == 0
    df = pd.read_csv(out / "tweets-cpu.csv")
    specs = ["full", "head", "loraplus"]
    expected = ([(m, p) for s in specs for m, p in ((s, "bf16"), (f"{s} [no bf16]", "fp32"))] if native
                else [(s, "fp32") for s in specs])  # the CPU runs fp32 either way: no fp32 twin rows
    assert list(zip(df.method, df.precision)) == expected
    assert measured_dtypes == [["bfloat16", "float32"] if native else ["float32"]]
    assert "error" not in df and (df["samples/s"] > 0).all() and (df["twin samples/s"] > 0).all()
    assert (df["MFU %"] > 0).all() and (df["HFU %"] > 0).all() and (df["twin MFU %"] > 0).all()
    assert df["same batches"].all() and list(df.batch) == [16] * len(df)
    assert df["× twin"].tolist() == pytest.approx((df["samples/s"] / df["twin samples/s"]).tolist())
    assert df["peak × twin"].tolist() == pytest.approx((df["peak MiB"] / df["twin peak MiB"]).tolist())
    assert df["trains all"].tolist() == [m.startswith("full") for m in df.method]
    assert ("× own fp32" in df) is native
    records = {r["run_id"]: r for r in _records(out / "records")}
    twins = {t["run_id"]: t for t in _records(out / "records" / "twins")}
    assert set(twins) == set(records) and len(records) == len(df)
    for rid, t in twins.items():
        m = records[rid]["measurements"]
        assert records[rid]["status"] == "ok" and records[rid]["config"]["budget"] == "48samples"
        assert (t["samples"], t["tokens"], t["steps"]) == (m["samples"], m["tokens"], m["steps"])
        assert t["trainable_params"] == m["trainable_params"] and t["total_params"] == m["total_params"]
        assert sum(FlopModel(**m["flop_model"]).step(b, w) for b, w in t["shapes"]) == pytest.approx(m["flops"])
        assert t["compute_dtype"] == ("bfloat16" if native and "bf16" not in records[rid]["config"]["ablate"]
                                      else "float32")
    md = (out / "tweets-cpu.md").read_text()
    assert "measured at the start of this run" in md and "12·n_layer·d² for GPT-2" in md
    assert ("bf16 " in md.split("limit, measured")[1].split("\n")[0]) is native
    printed = capsys.readouterr().out
    assert "measuring the device's peak in " + ("bf16, fp32" if native else "fp32") in printed
    assert "  fp32 64: " in printed and "  fp32 128: " in printed  # the probe's progress, size by size


def test_a_shape_list_and_samples_per_shape_are_checked(capsys):
    assert bench.main(["--model-shape", "gpt2,gpt5", "--methods", "full"]) == 2
    assert "unknown --model-shape gpt5; the shapes are gpt2, qwen3, llama, bert, modernbert" in capsys.readouterr().err
    assert bench.main(["--model-shape", "gpt2", "--methods", "full", "--samples", "64,bert=8"]) == 2
    assert "bert is not among the shapes measured (gpt2)" in capsys.readouterr().err
    assert bench.main(["--model-shape", "gpt2,bert", "--methods", "full", "--ablate"]) == 2
    assert "give one --model-shape" in capsys.readouterr().err


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
