"""A run is its stages in order (train, evaluate, and any added after): each adds its parts to the record, and a
stage that raises fails the run with its error."""
from __future__ import annotations

import json

import pytest

from methods.registry import Registry
from runners import compare
from runners.core.signals import ExitCode
from runners.job import stages
from runners.job.stages import Context, run_stages


def test_stages_run_in_order_and_merge_their_parts(monkeypatch):
    own = Registry("stage", "runners.job.stages")  # a registry of the test's own, holding only what it registers
    own._discovered = True
    monkeypatch.setattr(stages, "STAGES", own)
    seen = []

    @stages.stage("first")
    def first(ctx):
        seen.append("first")
        return {"curve": [1], "measurements": {"steps": 4, "eval_seconds": 1.0}}

    @stages.stage("second")
    def second(ctx):
        seen.append("second")
        spent = ctx.parts["measurements"]["eval_seconds"]
        return {"metrics": {"accuracy": 0.5}, "measurements": {"eval_seconds": spent + 2}}

    parts = run_stages(Context({}, None, None, {}), ["first", "second"])
    assert parts == {"curve": [1], "measurements": {"steps": 4, "eval_seconds": 3.0}, "metrics": {"accuracy": 0.5}}
    with pytest.raises(ValueError, match="'first' is already registered"):
        stages.stage("first")(second)
    with pytest.raises(ValueError, match="unknown stage 'third'. Registered: first, second"):
        run_stages(Context({}, None, None, {}), ["first", "third"])
    assert seen == ["first", "second"]  # an unknown name is refused before any stage runs


def _run_head(tmp_path, model, data) -> tuple[int, dict]:
    code = compare.main(["--methods", "head", "--model", str(model), "--data-dir", str(data), "--budget", "16samples",
                         "--batch-size", "8", "--eval-limit", "12", "--quiet", "--results", str(tmp_path)])
    [path] = (tmp_path / "tweets" / "runs").glob("*.json")
    return code, json.loads(path.read_text())


def test_a_stage_added_after_evaluation_sees_the_trained_model_and_adds_to_the_record(
        tmp_path, tiny_model_dir, tweets_dir, cache_dir, in_process, monkeypatch):
    seen = {}

    def probe(ctx):  # a post-training measurement, as a serving-cost stage would be
        seen.update(samples=ctx.trained.spent.samples, training=ctx.model.training,
                    accuracy=ctx.parts["metrics"]["accuracy"])
        return {"measurements": {"eval_seconds": ctx.parts["measurements"]["eval_seconds"] + 1000.0}}

    monkeypatch.setitem(stages.STAGES.entries, "probe", probe)
    monkeypatch.setattr(stages, "DEFAULT", (*stages.DEFAULT, "probe"))
    code, record = _run_head(tmp_path, tiny_model_dir, tweets_dir)
    assert code == ExitCode.OK and record["status"] == "ok"
    assert seen == {"samples": 16, "training": False, "accuracy": record["metrics"]["accuracy"]}
    assert record["measurements"]["eval_seconds"] > 1000.0  # its part, merged into the evaluate stage's


def test_a_failing_stage_fails_the_run_with_its_error(tmp_path, tiny_model_dir, tweets_dir, cache_dir, in_process,
                                                      monkeypatch):
    def broken(ctx):
        raise RuntimeError("the probe broke")

    monkeypatch.setitem(stages.STAGES.entries, "broken", broken)
    monkeypatch.setattr(stages, "DEFAULT", (*stages.DEFAULT, "broken"))
    code, record = _run_head(tmp_path, tiny_model_dir, tweets_dir)
    assert code == ExitCode.RUN_NOT_OK
    assert record["status"] == "failed" and record["error"] == "RuntimeError: the probe broke"
    assert "in broken" in record["traceback"] and record["metrics"] is None  # no half of a result
