"""The local pool: several runs at once on the CPU, each with its share of the cores, the same numbers as one at a time;
Ctrl-C stops every running run, which records itself cancelled; and the executor a command's flags ask for."""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from runners import compare
from runners.analysis.headers import mixed_resources
from runners.cli import run_settings
from runners.core.errors import UserError
from runners.core.signals import Stopped, stop_on_signals
from runners.data.sources import resolve_source
from runners.execute.factory import make_executor
from runners.execute.pool import LocalPool
from runners.execute.serial import InProcessExecutor, SubprocessExecutor
from runners.job import stages
from runners.planning.plan import Entry, make_plan
from runners.store.records import read_record, runs_dir


def grid_jobs(tmp: Path, model: Path, data: Path, methods=("head", "bitfit"), seeds=(0,), budget="32samples",
              results: Path | None = None) -> list[dict]:
    """A small comparison's jobs, planned as `runners.compare` plans them, with their records under `results`."""
    args = compare.build_parser().parse_args([
        "--model", str(model), "--data-dir", str(data), "--budget", budget, "--batch-size", "16",
        "--eval-limit", "12", "--quiet", "--skip-serving", "--results", str(results or tmp / "results"),
        "--cache-dir", str(tmp / "cache")])
    source = resolve_source(args.dataset, args.data_dir)
    settings = run_settings(args, source)
    common, settings["max_length"] = compare._prepare(args, source, "test", False)
    folder = runs_dir(Path(args.results), source.name)
    return make_plan([Entry(m, stages.DEFAULT) for m in methods], seeds, settings, common, folder, rerun=True).jobs


def _accuracy(job: dict) -> float:
    return read_record(Path(job.record_path)).metrics.accuracy


def test_two_workers_run_a_grid_at_once_each_with_its_share_and_the_same_numbers(tmp_path, tiny_model_dir,
                                                                                 tweets_dir, monkeypatch, capsys):
    monkeypatch.setattr("runners.execute.pool.cpu_cores", lambda: 2)  # whatever this machine has: two shares of one
    jobs = grid_jobs(tmp_path, tiny_model_dir, tweets_dir, methods=("head", "bitfit", "lora"), budget="16samples")
    alive, peak = set(), [0]

    def watch():  # how many runs train at once, seen from outside
        while not stop.is_set():
            kids = [p for p in psutil.Process().children() if "runners.job.worker" in " ".join(_cmdline(p))]
            alive.update(p.pid for p in kids)
            peak[0] = max(peak[0], len(kids))
            time.sleep(0.05)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with LocalPool(2, quiet=True) as pool:
        records = list(pool.map(jobs))
    stop.set()
    watcher.join()
    assert peak[0] == 2 and len(alive) == 3  # two at once, the third in the slot the first to end left
    assert sorted(r.run_id for r in records) == sorted(j.run_id for j in jobs)
    for r in records:
        assert r.status.value == "ok", r.error
        assert r.device["executor"] == "local-pool" and r.device["slot"] in (0, 1) and r.device["concurrent"] == 2
        assert r.device["threads"] == 1 and r.device["host"]  # torch's threads in the run, as the pool set them
    assert mixed_resources(records) is None
    out = capsys.readouterr().out  # one line as each run starts and as it ends, no per-run bars
    for job in jobs:
        name = f"{job.config.method} seed {job.config.seed}"
        assert f"{name}: started [slot " in out and f"{name}: ok, test acc " in out
    assert "step/s" not in out
    pooled = {j.run_id: _accuracy(j) for j in jobs}

    with InProcessExecutor() as serial:  # the same jobs one at a time, with every core: the same numbers
        alone = list(serial.map(jobs))
    assert {r.run_id: r.metrics.accuracy for r in alone} == pooled
    assert {r.device["executor"] for r in alone} == {"in-process"}
    note = mixed_resources([*records, *alone])
    assert note is None if alone[0].device["threads"] == 1 else "threads 1, " in note


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def test_ctrl_c_cancels_every_running_run_keeps_the_finished_and_drops_the_rest(tmp_path, tiny_model_dir,
                                                                               tweets_dir):
    jobs = grid_jobs(tmp_path, tiny_model_dir, tweets_dir, methods=("head", "full", "lora"), budget="60s")
    got = []
    # Ctrl-C a few seconds in: the two runs are loading or training (either way they record themselves cancelled)
    timer = threading.Timer(4, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    with stop_on_signals(), pytest.raises(Stopped) as stopped:
        with LocalPool(2, quiet=True) as pool:
            timer.start()
            got.extend(pool.map(jobs))
    timer.cancel()
    assert got == []  # 60 s budgets: none finished
    cancelled = stopped.value.cancelled
    assert sorted(r.config.method for r in cancelled) == ["full", "head"]
    for r in cancelled:
        assert r.status.value == "cancelled" and r.error == "interrupted (Ctrl-C)"
        assert read_record(Path(jobs[0].record_path).with_name(f"{r.run_id}.json")) == r
    assert not Path(jobs[2].record_path).exists()  # never started: no record, resume runs it
    assert not [p for p in psutil.Process().children() if "runners.job.worker" in " ".join(_cmdline(p))]
    assert not list(Path(jobs[0].record_path).parent.glob(".*"))  # no claim, no temporary left


def test_make_executor_picks_by_flags_and_refuses_bad_values(monkeypatch):
    assert type(make_executor()) is SubprocessExecutor  # the CPU: one at a time
    assert type(make_executor(workers=1)) is SubprocessExecutor
    pool = make_executor(workers=3, device="cpu")
    assert isinstance(pool, LocalPool) and pool.workers == 3 and pool.gpus == [] and pool.threads >= 1
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    pool = make_executor()  # on CUDA: one per visible GPU, each named as this process sees it
    assert isinstance(pool, LocalPool) and pool.workers == 2 and pool.gpus == ["3", "5"] and pool.threads is None
    assert type(make_executor(device="cpu")) is SubprocessExecutor
    for kwargs, message in [({"workers": 0}, "--workers must be an integer >= 1, got 0"),
                            ({"kind": "slurm"}, "--executor must be one of local, ray, got 'slurm'"),
                            ({"ray_address": "auto"}, "--ray-address needs --executor ray")]:
        with pytest.raises(UserError, match=message):
            make_executor(**kwargs)
    monkeypatch.setitem(sys.modules, "ray", None)  # as where ray is not installed
    with pytest.raises(UserError, match=r"--executor ray needs ray: pip install -e \"\.\[ray\]\""):
        make_executor("ray")


def test_a_table_whose_runs_had_different_per_run_resources_says_so():
    from runners.store.records import parse

    base = parse((Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json").read_text())
    alone, shared = (base.model_copy(update={"device": {"type": "cpu", "name": "EPYC", "threads": t}}) for t in (2, 1))
    assert mixed_resources([alone, alone]) is None and mixed_resources([alone, base.model_copy(
        update={"device": None})]) is None  # a failed run's record has no device: nothing to compare
    assert mixed_resources([alone, shared]) == ("note: these runs did not have the same resources (threads 1, 2): "
                                                "their timings do not compare")
    gpu = base.model_copy(update={"device": {"type": "cuda", "name": "NVIDIA H100"}})
    assert "device EPYC, NVIDIA H100; threads 2, unrecorded" in mixed_resources([alone, gpu])
    # precision: a row whose seeds computed in different dtypes is a mix; a [no bf16] row beside its twin is not
    cpu = {"type": "cpu", "name": "EPYC", "threads": 2}
    bf16, fp32 = (base.model_copy(update={"device": {**cpu, "compute_dtype": d}}) for d in ("bfloat16", "float32"))
    off = fp32.model_copy(update={"config": dataclasses.replace(base.config, ablate=("bf16",))})
    on = bf16.model_copy(update={"config": dataclasses.replace(base.config, ablate=())})
    assert mixed_resources([on, off]) is None
    assert mixed_resources([on, on.model_copy(update={"device": {**cpu, "compute_dtype": "float32"}})]) == (
        f"note: these runs did not have the same resources ({base.config.method}: compute dtype bfloat16, float32): "
        "their timings do not compare")


def test_the_sweep_estimate_schedules_the_longest_runs_first_on_the_free_slot():
    from runners.sweep_estimate import makespan, sweep

    assert makespan([2, 3, 4, 3], 2) == 6 and makespan([3, 3, 2, 2, 2], 1) == 12  # 4+2 and 3+3
    assert makespan([5, 1, 1], 8) == 5  # a slot per run: the longest run is the wall time
    runs = sweep({"a": (10.0, 2.0), "b": (20.0, 1.0)}, methods=3, rates=2, seeds=1, budgets=(1, 4), overhead=1.0)
    # methods a, b, a; each budget's training scaled, the rest and the overhead paid once per run
    assert sorted(runs) == sorted([13, 13, 43, 43, 22, 22, 82, 82, 13, 13, 43, 43])
