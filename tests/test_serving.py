"""The serve stage end to end on a tiny GPT-2: artifacts, merging, serving timings, training cost, and
`runners.predict` on a model kept by `--save-models`."""
from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from runners import compare, predict
from runners.data.sources import resolve_source
from runners.data.splits import load_splits
from runners.job.stages.serve import MANIFEST
from runners.measure.prices import price_per_hour
from runners.store.records import parse
from runners.store.schema import Record

METHODS = ("head", "full", "lora", "dora", "ia3", "prompt")


def run(tmp, model, data, *extra, methods=METHODS):
    return compare.main(["--methods", ",".join(methods), "--model", str(model), "--data-dir", str(data),
                         "--budget", "32samples", "--batch-size", "16", "--eval-limit", "30", "--quiet",
                         "--results", str(tmp / "results"), *extra])


def records(results) -> dict[str, Record]:
    return {r.config.method: r for r in
            (parse(p.read_text()) for p in sorted((results / "tweets" / "runs").glob("*.json")))}


UMASK = 0o002  # the serve stage runs under it: kept files should be 0664, where safetensors' own mode is 0600


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir, tweets_dir):
    """One comparison with the serve stage on, its models kept."""
    from runners import compare as compare_module
    from runners.execute.serial import InProcessExecutor

    tmp = tmp_path_factory.mktemp("serve")
    umask = os.umask(UMASK)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PEFT_LAB_CACHE", str(tmp / "cache"))
            mp.setattr(compare_module, "Executor", InProcessExecutor)
            assert run(tmp, tiny_model_dir, tweets_dir, "--save-models", str(tmp / "models")) == 0
    finally:
        os.umask(umask)
    return tmp


def test_every_run_measures_its_artifact_merge_and_serving_cost(served):
    recs = records(served / "results")
    assert set(recs) == set(METHODS)
    for name, r in recs.items():
        s = r.serving
        assert s is not None, name
        assert s.artifact_bytes > 0 and s.latency_ms > 0 and s.throughput_per_second > 0 and s.throughput_batch == 30
        assert r.cost.device_hours > 0 and r.cost.money is None  # a CPU has no list price
    for name in ("lora", "dora", "ia3"):  # they fold into the base, within the stated tolerance
        s = recs[name].serving
        assert (s.mergeable, s.deployed, s.extra_tokens) == ("yes", "merged", 0), name
        assert s.merge_max_abs_diff <= s.merge_tolerance and s.artifact == "adapter"
    prompt = recs["prompt"].serving
    assert (prompt.mergeable, prompt.deployed, prompt.extra_tokens) == ("no", "as trained", 20)
    head, full = recs["head"].serving, recs["full"].serving
    assert (head.mergeable, head.artifact, full.mergeable, full.artifact) == ("n/a", "tensors", "n/a", "model")
    assert head.artifact_bytes < 2048  # 32 x 3 fp32 weights and a header
    assert full.artifact_bytes > 4 * recs["full"].measurements.total_params  # the whole model, fp32


def test_tables_and_plot_show_serving_and_cost(served):
    md = (served / "results" / "tweets" / "comparison.md").read_text()
    for header in ("artifact (KiB) ↓", "latency b1 (ms) ↓", "throughput (texts/s) ↑", "device-hours ↓",
                   "| mergeable", "extra tokens", "**Serving**", "**Training cost:**"):
        assert header in md, header
    assert "cost (USD)" not in md  # no price on the CPU: no money column
    assert list((served / "results" / "tweets" / "plots").glob("*-accuracy_vs_latency.png"))
    csv = pd.read_csv(served / "results" / "tweets" / "comparison.csv")
    assert set(csv.loc[csv.method.isin(["lora", "ia3", "dora"]), "mergeable"].str[:3]) == {"yes"}


def test_saved_models_load_back_and_label_the_test_texts_as_the_run_did(served, tweets_dir):
    """--save-models keeps what loads back through runners.predict, which gives the run's own test predictions and
    so its recorded test accuracy."""
    recs = records(served / "results")
    cfg = next(iter(recs.values())).config
    splits = load_splits(resolve_source(None, str(tweets_dir)), val_fraction=cfg.val_fraction,
                         train_limit=cfg.train_limit, eval_limit=cfg.eval_limit, seed=cfg.split_seed, log=lambda *_: 0)
    texts, truth = splits.test.text.tolist(), splits.test.label.to_numpy()
    for name, r in recs.items():
        folder = served / "models" / r.run_id
        assert r.serving.saved_to == str(folder) and (folder / MANIFEST).is_file()
        predicted = predict.predict(folder, texts).argmax(-1)
        assert "".join(map(str, predicted)) == r.predictions.predicted, name
        assert (predicted == truth).mean() == pytest.approx(r.metrics.accuracy), name


def test_every_kept_file_follows_the_umask(served):
    """Weights included: peft's adapter, the trained tensors and the whole model, which their writers make 0600."""
    kept = list((served / "models").rglob("*"))
    assert {"adapter_model.safetensors", "trained.safetensors", "model.safetensors"} <= {p.name for p in kept}
    for path in kept:
        assert stat.S_IMODE(path.stat().st_mode) == (0o777 if path.is_dir() else 0o666) & ~UMASK, path


def test_predict_prints_each_texts_label_and_probabilities(served, capsys, tmp_path):
    run_id = records(served / "results")["lora"].run_id
    (tmp_path / "texts.csv").write_text("text\nwhat a lovely day\n")
    assert predict.main([str(served / "models" / run_id), "I hate mondays", "--file", str(tmp_path / "texts.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "label\tp(negative)\tp(neutral)\tp(positive)\ttext"
    for line, text in zip(lines[1:], ["I hate mondays", "what a lovely day"]):
        label, *proba, said = line.split("\t")
        assert said == text and label in ("negative", "neutral", "positive")
        assert sum(map(float, proba)) == pytest.approx(1, abs=1e-3)
    assert predict.main([str(tmp_path), "x"]) == 2  # no saved run there: one line, exit 2
    assert "holds no saved run" in capsys.readouterr().err


def test_skip_serving_skips_the_stage_and_keeps_the_training_cost(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                                  in_process):
    assert run(tmp_path, tiny_model_dir, tweets_dir, "--skip-serving", "--price-per-hour", "2.5",
               methods=("head",)) == 0
    r = records(tmp_path / "results")["head"]
    assert r.serving is None
    assert r.cost.price_per_hour == 2.5 and r.cost.money == pytest.approx(2.5 * r.cost.device_hours)
    md = (tmp_path / "results" / "tweets" / "comparison.md").read_text()
    assert "latency b1" not in md and "cost (USD) ↓" in md and "--price-per-hour" in md


def test_a_gpu_list_price_is_named_and_a_cpu_has_none():
    price, source = price_per_hour({"type": "cuda", "name": "NVIDIA A10G"})
    assert price == 1.006 and "A10G" in source and "estimate" in source
    assert price_per_hour({"type": "cuda", "name": "NVIDIA H200"}) == (None, None)  # no checked price: none given
    assert price_per_hour({"type": "cpu", "name": "AMD EPYC"}) == (None, None)
    assert price_per_hour({"type": "cpu"}, 1.0) == (1.0, "--price-per-hour")


def test_runs_serve_and_search_trials_do_not():
    from runners.job import stages

    assert stages.DEFAULT[-1] == "serve" and "serve" not in stages.SEARCH
