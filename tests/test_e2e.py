"""`runners.compare` end to end on a tiny GPT-2: records, tables, report, reruns and reproducibility."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from runners import compare, report

KEYS = {"schema", "run_id", "experiment_id", "status", "error", "config", "method", "model", "data", "metrics",
        "predictions",
        "curve", "measurements", "device", "versions", "git", "command", "timestamp"}


def run(tmp_path, model, data, *extra):
    return compare.main(["--methods", "full,head,lora,qlora", "--model", str(model), "--data-dir", str(data),
                         "--budget", "48samples", "--batch-size", "16", "--eval-limit", "30", "--quiet",
                         "--results", str(tmp_path / "results"), *extra])


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_model_dir, tweets_dir):
    tmp = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEFT_LAB_CACHE", str(tmp / "cache"))
        assert run(tmp, tiny_model_dir, tweets_dir) == 0
        yield tmp / "results"


def records(results):
    return {r["config"]["method"]: r for r in
            (json.loads(p.read_text()) for p in sorted((results / "tweets" / "runs").glob("*.json")))}


def test_one_record_per_run_with_full_context(results):
    recs = records(results)
    assert set(recs) == {"full", "head", "lora", "qlora"}
    for label, r in recs.items():
        assert KEYS <= set(r), KEYS - set(r)
        assert r["status"] == "ok" and r["error"] is None
        assert r["method"]["label"] == label and r["method"]["params"]["lr"] > 0
        m = r["measurements"]
        assert r["config"]["budget"] == "48samples" and m["samples"] == 48
        assert r["measurements"]["steps"] == 3
        assert r["data"]["rows"] == {"train": 228, "validation": 12, "test": 30}
        assert len(r["model"]["weights_sha256"]["model.safetensors"]) == 64
        assert 0 <= r["metrics"]["accuracy"] <= 1 and r["metrics"]["majority_baseline"] == pytest.approx(1 / 3)
        # checkpoints 1/8 and 1/4 both fall at step 1 of 3, 1/2 at step 2
        assert [c["fraction"] for c in r["curve"]] == pytest.approx([1 / 3, 2 / 3, 1.0], abs=1e-3)
        assert [c["steps"] for c in r["curve"]] == [1, 2, 3] and r["curve"][-1]["flops"] == m["flops"] > 0
        assert m["train_seconds"] > 0 and m["peak_memory_mib"] > 0 and m["peak_memory_kind"] == "cpu_peak_rss"
        assert 0 < m["trainable_params"] <= m["total_params"]
        assert r["versions"]["torch"] and r["device"]["type"] == "cpu"
        # every row's test predictions, for example-by-example comparisons, and the scores from probabilities
        assert r["predictions"]["rows_sha256"] == r["data"]["content_sha256"]["test"]
        assert len(r["predictions"]["labels"]) == len(r["predictions"]["predicted"]) == 30
        assert 0 <= r["metrics"]["auc_macro"] <= 1 and 0 <= r["metrics"]["ece"] <= 1
    assert recs["head"]["measurements"]["trainable_params"] == 32 * 3
    assert recs["qlora"]["method"]["params"]["gradient_checkpointing"] is True


def test_tables_show_every_method(results):
    md = (results / "tweets" / "comparison.md").read_text()
    for label in ("full", "head", "lora", "qlora"):
        assert f"| {label} " in md
    assert "test acc ↑" in md and "peak mem (MiB) ↓" in md and "48samples" in md
    eid = json.loads(next((results / "tweets" / "runs").glob("*.json")).read_text())["experiment_id"]
    for plot in ("accuracy_vs_budget.png", "accuracy_vs_cost.png"):
        path = results / "tweets" / "plots" / f"{eid}-{plot}"
        assert path.stat().st_size > 10_000 and f"(plots/{path.name})" in md
    assert "val acc @1/8 ↑" in md and "budget to target ↓" in md and "is the interval of samples" in md
    page = results / "tweets" / "index.html"  # every comparison ends by writing its folder's page (tests/test_page.py)
    assert page.stat().st_size > 1_000_000 and "<title>Comparison on tweets</title>" in page.read_text()
    # a 2-layer random model on 48 samples learns nothing: no method beats the constant prediction, none is bold
    # (the fixture's train rows are balanced: the first class, 'negative', is the majority class on a tie)
    assert "**Verdict:** No method beats always predicting 'negative'" in md
    assert "No top group: no row beats always predicting 'negative'" in md and "vs majority class" in md
    csv = pd.read_csv(results / "tweets" / "comparison.csv")
    assert sorted(csv.method) == ["full", "head", "lora", "qlora"]
    assert list(csv["test acc"]) == sorted(csv["test acc"], reverse=True)  # ranked by accuracy


def test_report_rebuilds_the_same_tables_from_records(results, capsys):
    md_before = (results / "tweets" / "comparison.md").read_text()
    csv_before = (results / "tweets" / "comparison.csv").read_text()
    (results / "tweets" / "comparison.md").unlink()
    assert report.main(["--results", str(results), "--dataset", "tweets"]) == 0
    assert (results / "tweets" / "comparison.md").read_text() == md_before
    assert (results / "tweets" / "comparison.csv").read_text() == csv_before
    assert "| qlora " in capsys.readouterr().out


def test_rerun_skips_finished_runs(results, tiny_model_dir, tweets_dir):
    before = {k: r["timestamp"] for k, r in records(results).items()}
    assert run(results.parent, tiny_model_dir, tweets_dir) == 0
    assert {k: r["timestamp"] for k, r in records(results).items()} == before


def test_same_seed_same_numbers(results, tiny_model_dir, tweets_dir, tmp_path, cache_dir):
    assert compare.main(["--methods", "full,lora", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir),
                         "--budget", "48samples", "--batch-size", "16", "--eval-limit", "30", "--quiet",
                         "--results", str(tmp_path / "again")]) == 0
    first, again = records(results), records(tmp_path / "again")
    for label in ("full", "lora"):
        for key in ("accuracy", "macro_f1", "eval_loss"):
            assert again[label]["metrics"][key] == first[label]["metrics"][key]
        assert again[label]["run_id"] == first[label]["run_id"]


def test_user_mistakes_exit_2_with_one_line(tmp_path, tiny_model_dir, tweets_dir, capsys, cache_dir):
    base = ["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--results", str(tmp_path)]
    for argv, message in [
        (["--methods", "lroa"], "error: unknown method 'lroa'. Did you mean 'lora'?"),
        (["--methods", "lora:r=0"], "error: lora:r=0: r must be >= 1, got 0"),
        (["--methods", "full", "--budget", "5 parsecs"], "error: bad budget '5 parsecs'"),
        (["--methods", ""], "error: no method given"),
        (["--methods", "full", "--max-length", "4096"], "exceeds the model's 128 positions"),
        (["--methods", "full", "--seeds", "a"], "error: --seeds must be comma-separated integers"),
        (["--methods", "full", "--memory-cap", "lots"], "error: bad --memory-cap 'lots'"),
        (["--methods", "full", "--checkpoints", "1/0"], "error: --checkpoints must be comma-separated fractions"),
    ]:
        assert compare.main(base + argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_list_shows_every_method(capsys):
    assert compare.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("full", "head", "lora", "qlora"):
        assert f"\n{name} " in f"\n{out}"
    assert "r=8" in out
