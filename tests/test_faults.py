"""A run that fails is recorded with a status, whether it raises or its process dies."""
from __future__ import annotations

import json

from runners.compare import _run_child

JOB = {"schema": 1, "run_id": "x-s0-abc", "experiment_id": "e", "config": {"method": "full", "seed": 0},
       "model_identity": {"name": "m"}, "data_identity": {"dataset": "tweets"}, "git": {}, "command": "test"}


def test_a_child_that_dies_before_writing_gets_a_failed_record(tmp_path):
    path = tmp_path / "x-s0-abc.json"
    assert _run_child(JOB, path) == 1  # the worker cannot even start on this job: KeyError, exit 1
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and "exit code 1" in record["error"]
    assert record["config"] == JOB["config"] and record["run_id"] == "x-s0-abc"


def test_a_run_that_raises_records_failed_with_the_error(tmp_path, tiny_model_dir):
    path = tmp_path / "y.json"
    config = {"method": "full", "seed": 0, "device": "cpu"}
    job = {**JOB, "config": config, "tokens": str(tmp_path / "missing.pt"), "model": {"path": str(tiny_model_dir)},
           "num_labels": 3, "pad_id": 50256, "majority_baseline": 0.4, "record_path": str(path)}
    assert _run_child(job, path) == 1
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and "missing.pt" in record["error"] and "Traceback" in record["traceback"]
    assert record["versions"]["torch"]
