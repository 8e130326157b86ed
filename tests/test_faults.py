"""A run that fails is recorded with a status, whether it raises or its process dies, and the user is told."""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runners import compare, report
from runners.analysis.experiment import Experiment
from runners.analysis.plots import legend_name, write_plots
from runners.core.signals import ExitCode
from runners.execute.serial import SubprocessExecutor
from runners.settings.config import RunConfig
from runners.store.records import parse
from runners.store.schema import Status, validate


@pytest.mark.parametrize("death, says", [("raise SystemExit(1)", "(exit code 1)"),
                                         ("import os; os.kill(os.getpid(), 9)", "(signal 9)")])
def test_a_child_that_dies_before_writing_gets_a_failed_record(tmp_path, make_job, death, says):
    path = tmp_path / "x-s0-abc.json"
    executor = SubprocessExecutor(command=[sys.executable, "-c", death])  # dies before it reads its job
    record = executor.run(make_job(path))
    assert record == parse(path.read_text())
    assert record.status is Status.FAILED and f"run process died {says} before writing its record" in record.error
    assert (record.config.method, record.seed, record.run_id) == ("full", 0, "x-s0-abc")


def test_a_job_file_left_by_a_killed_command_is_cleaned_by_the_next_run_of_it(tmp_path, make_job):
    """kill -9 of the command leaves its run's job file (nothing can remove it then): beside the record, not in
    /tmp, where the same command, run again, replaces it and removes it when the run ends."""
    path = tmp_path / "runs" / "x-s0-abc.json"
    job = make_job(path)
    script = ("import sys; from runners.execute.serial import SubprocessExecutor; from runners.job.spec import Job; "
              "SubprocessExecutor(command=[sys.executable, '-c', 'import time; time.sleep(60)']).run("
              f"Job.from_json({job.to_json()!r}))")
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    job_file = path.with_name(".x-s0-abc.job.json")
    deadline = time.monotonic() + 30
    while not job_file.exists() and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_file.exists() and stat.S_IMODE(job_file.stat().st_mode) == 0o600
    os.killpg(parent.pid, 9)  # the command and its run, as kill -9 of a process group does
    parent.wait()
    assert job_file.exists()  # nothing could remove it
    record = SubprocessExecutor(command=[sys.executable, "-c", "raise SystemExit(1)"]).run(job)  # the same run again
    assert record.status is Status.FAILED and not job_file.exists()


def test_a_run_that_raises_records_failed_with_the_error(tmp_path, tiny_model_dir, make_job):
    path = tmp_path / "y.json"
    job = make_job(path, config=RunConfig(method="full", seed=0, device="cpu"), tokens=str(tmp_path / "missing.pt"),
                   model={"name": "tiny", "path": str(tiny_model_dir), "weights_sha256": {}}, pad_id=50256)
    record = SubprocessExecutor().run(job)
    assert record.status is Status.FAILED and "missing.pt" in record.error and "Traceback" in record.traceback
    assert record.versions["torch"]


def _records(results) -> dict[str, dict]:
    return {r["method"]["label"]: r for r in
            (json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json"))}


def _argv(results, model, data, methods, budget="32samples"):
    return ["--methods", methods, "--model", str(model), "--data-dir", str(data), "--budget", budget,
            "--batch-size", "16", "--eval-limit", "12", "--quiet", "--results", str(results)]


def test_out_of_memory_is_recorded_and_the_comparison_goes_on(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                              in_process, monkeypatch, capsys):
    from runners.job.stages import train as stage

    real_train = stage.train

    def train(model, method, *args, **kwargs):  # simulated: a CPU has no allocator limit to hit
        if method.name == "full":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real_train(model, method, *args, **kwargs)

    monkeypatch.setattr(stage, "train", train)
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "full,head")) == ExitCode.RUN_NOT_OK == 3
    recs = _records(tmp_path)
    assert recs["full"]["status"] == "oom" and "Tried to allocate 20.00 MiB" in recs["full"]["error"]
    assert recs["head"]["status"] == "ok"
    table = (tmp_path / "tweets" / "comparison.md").read_text()
    assert re.search(r"\| full .*\| seed 0: oom: OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB +\|",
                     table)
    assert re.search(r"\| head .*\| ok +\|", table)
    err = capsys.readouterr().err
    assert "full seed 0: oom: OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB" in err
    assert err.strip().splitlines()[-1] == "error: 1 of 2 runs did not end ok: full seed 0 (oom)"


def test_a_diverging_run_is_recorded_at_its_step_and_the_rest_go_on(tmp_path, tiny_model_dir, tweets_dir,
                                                                    cache_dir, in_process, capsys):
    old = os.umask(0o022)  # a team's shared results folder: what is written must be readable by the others
    try:
        assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "full:lr=1e30,head")) == 3
    finally:
        os.umask(old)
    written = [*(tmp_path / "tweets").rglob("*.json"), *(tmp_path / "tweets").glob("comparison.*"),
               *(tmp_path / "tweets").rglob("*.png")]
    # records, tables, plots (accuracy vs budget, vs cost, vs serving latency)
    assert len(written) == 2 + 2 + 3 and {stat.S_IMODE(f.stat().st_mode) for f in written} == {0o644}
    recs = _records(tmp_path)
    assert recs["full:lr=1e30"]["status"] == "diverged"
    assert "training loss became non-finite at step" in recs["full:lr=1e30"]["error"]
    assert recs["head"]["status"] == "ok"
    out, err = capsys.readouterr()
    # said before the next run starts (--quiet hides progress bars, not what happened)
    said = "full:lr=1e30 seed 0: diverged: training loss became non-finite at step"
    assert said in err and "head seed 0: training" in out
    table = (tmp_path / "tweets" / "comparison.md").read_text()
    # every seed of the row failed: the row stays, with dashes for numbers and the reason in its status
    assert re.search(r"\| full:lr=1e30 +\| – .*\| seed 0: diverged: training loss became non-finite", table)
    assert len(list((tmp_path / "tweets" / "plots").glob("*.png"))) == 3
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "head")) == 0  # a re-run of the ok one alone
    assert "head seed 0: ok record exists" in capsys.readouterr().out  # said under --quiet too


def test_a_failed_method_is_named_in_the_plots_not_dropped(tmp_path, monkeypatch, make_job):
    import matplotlib.axes

    base = parse((Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json").read_text())
    runs = [base, base.model_copy(update={"status": Status.OOM, "error": "out of memory"})]
    assert legend_name("lora", runs[:1]) == "lora"
    assert legend_name("lora", runs) == "lora (1 of 2 seeds failed: oom)"
    assert legend_name("full", runs[1:]) == "full (failed: oom)"
    legends = []
    real = matplotlib.axes.Axes.legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend", lambda ax, *a, **k: legends.append(
        ax.get_legend_handles_labels()[1]) or real(ax, *a, **k))
    job = make_job(tmp_path / "x.json", config=RunConfig(method="full", seed=0, budget="32samples"))
    record = validate(job.base_record(Status.DIVERGED, "training loss became non-finite at step 1"))
    paths = write_plots(Experiment.of([record]), tmp_path)  # nothing ended ok: the plots still say what failed
    assert [p.name for p in paths] == ["accuracy_vs_budget.png", "accuracy_vs_cost.png"]
    assert legends == [["full (failed: diverged)"]] * 3


def test_debug_adds_the_traceback_and_keeps_exit_code_2(capsys):
    assert compare.main(["--methods", "lroa", "--debug"]) == ExitCode.USER_MISTAKE == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith(
        "error: unknown method 'lroa'. Did you mean 'lora'?")


def test_two_comparisons_into_one_folder_lose_nothing(tmp_path, tiny_model_dir, tweets_dir, cache_dir):
    procs = [subprocess.Popen([sys.executable, "-m", "runners.compare",
                               *_argv(tmp_path, tiny_model_dir, tweets_dir, methods), "--skip-serving"],
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
    import runners.core.files

    real_fsync = os.fsync

    def no_space(fd):  # the disk fills once the tokenized data is cached: the record is what cannot be written
        if ".json." not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runners.core.files.os, "fsync", no_space)
    assert compare.main(_argv(tmp_path, tiny_model_dir, tweets_dir, "head")) == 1
    err = capsys.readouterr().err
    assert "error: cannot write the record" in err and "No space left on device" in err
    assert err.strip().splitlines()[-1].startswith("error: No space left on device: ")
    assert list((tmp_path / "tweets" / "runs").iterdir()) == []  # no half-written record, no temp file
