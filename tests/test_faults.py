"""A run that fails is recorded with a status, whether it raises or its process dies."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import torch

from runners import compare, report
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


def _records(results) -> dict[str, dict]:
    return {r["method"]["label"]: r for r in
            (json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json"))}


def _argv(results, model, data, methods, budget="32samples"):
    return ["--methods", methods, "--model", str(model), "--data-dir", str(data), "--budget", budget,
            "--batch-size", "16", "--eval-limit", "12", "--quiet", "--results", str(results)]


def test_out_of_memory_is_recorded_and_the_comparison_goes_on(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                              in_process, monkeypatch):
    from runners import worker

    real_train = worker.train

    def train(model, method, *args, **kwargs):  # simulated: a CPU has no allocator limit to hit
        if method.name == "full":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real_train(model, method, *args, **kwargs)

    monkeypatch.setattr(worker, "train", train)
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "full,head")) == 0
    recs = _records(tmp_path)
    assert recs["full"]["status"] == "oom" and "Tried to allocate 20.00 MiB" in recs["full"]["error"]
    assert recs["head"]["status"] == "ok"
    table = (tmp_path / "tweets" / "comparison.md").read_text()
    assert re.search(r"\| full .*\| seed 0: oom +\|", table) and re.search(r"\| head .*\| ok +\|", table)


def test_a_diverging_run_is_recorded_at_its_step_and_the_rest_go_on(tmp_path, tiny_model_dir, tweets_dir,
                                                                    cache_dir, in_process):
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "full:lr=1e30,head")) == 0
    recs = _records(tmp_path)
    assert recs["full:lr=1e30"]["status"] == "diverged"
    assert "training loss became non-finite at step" in recs["full:lr=1e30"]["error"]
    assert recs["head"]["status"] == "ok"


def test_ctrl_c_cancels_the_current_run_keeps_the_finished_and_resumes(tmp_path, tiny_model_dir, tweets_dir,
                                                                       cache_dir, in_process):
    argv = _argv(tmp_path, tiny_model_dir, tweets_dir, "head,full", budget="6s")
    loud = [a for a in argv if a != "--quiet"]  # the run announcements tell when the second run starts
    proc = subprocess.Popen([sys.executable, "-m", "runners.compare", *loud], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = b""
    while b"full seed 0: training" not in seen or b"full:" not in seen.split(b"full seed 0: training")[-1]:
        chunk = os.read(proc.stdout.fileno(), 4096)  # tqdm redraws with \r: read bytes, not lines
        assert chunk, seen.decode(errors="replace")[-2000:]
        seen += chunk
    time.sleep(1)  # the second run's progress bar is up: it is training; now press Ctrl-C
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    assert proc.wait(timeout=120) == 130
    recs = _records(tmp_path)
    assert recs["head"]["status"] == "ok" and recs["full"]["status"] == "cancelled"
    assert "| head " in (tmp_path / "tweets" / "comparison.md").read_text()
    assert not list(tmp_path.rglob("*.tmp"))
    head_written = recs["head"]["timestamp"]
    assert compare.main(argv) == 0  # the same command again: head is kept, full runs
    recs = _records(tmp_path)
    assert recs["head"]["timestamp"] == head_written and recs["full"]["status"] == "ok"


def test_two_comparisons_into_one_folder_lose_nothing(tmp_path, tiny_model_dir, tweets_dir, cache_dir):
    procs = [subprocess.Popen([sys.executable, "-m", "runners.compare",
                               *_argv(tmp_path, tiny_model_dir, tweets_dir, methods)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for methods in ("head,bitfit", "lora,full")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    recs = _records(tmp_path)
    assert sorted(recs) == ["bitfit", "full", "head", "lora"] and {r["status"] for r in recs.values()} == {"ok"}
    assert not list(tmp_path.rglob("*.tmp"))
    assert report.main(["--results", str(tmp_path)]) == 0  # the tables hold every record, whoever wrote last
    table = (tmp_path / "tweets" / "comparison.md").read_text()
    assert all(f"| {m} " in table for m in recs)


def test_a_full_disk_leaves_no_half_written_file_and_says_so(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                             in_process, monkeypatch, capsys):
    import runners.records

    def no_space(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runners.records.os, "fsync", no_space)
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "head")) == 1
    err = capsys.readouterr().err
    assert "error: cannot write the record" in err and "No space left on device" in err
    assert err.strip().splitlines()[-1].startswith("error: No space left on device: ")
    assert list((tmp_path / "tweets" / "runs").iterdir()) == []  # no half-written record, no temp file
