"""Stopping is clean however it is asked for: a terminal's Ctrl-C, SIGINT or SIGTERM to the comparison alone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from runners import compare
from runners.core.signals import Stopped, stop_on_signals
from runners.execute.serial import SubprocessExecutor


def _cmdline(process: psutil.Process) -> list[str]:
    """A process's command line; empty for one that has just ended (a zombie not yet reaped, or gone)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _records(results) -> dict[str, dict]:
    return {r["method"]["label"]: r for r in
            (json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json"))}


@pytest.mark.parametrize("signum, to_group, cause", [
    (signal.SIGINT, True, "Ctrl-C"),  # a terminal's Ctrl-C reaches the whole process group
    (signal.SIGINT, False, "Ctrl-C"),  # `kill -INT PID`, `timeout -s INT`, a supervisor: the comparison alone
    (signal.SIGTERM, False, "SIGTERM"),  # `timeout`, a CI cancellation, a scheduler
], ids=["ctrl-c-to-the-group", "sigint-to-the-parent", "sigterm-to-the-parent"])
def test_a_signal_cancels_the_current_run_keeps_the_finished_and_resumes(tmp_path, tiny_model_dir, tweets_dir,
                                                                         cache_dir, in_process, capsys, signum,
                                                                         to_group, cause):
    results, temp = tmp_path / "results", tmp_path / "tmp"
    temp.mkdir()
    argv = ["--methods", "head,full", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--budget",
            "6s", "--batch-size", "16", "--eval-limit", "12", "--skip-serving", "--results", str(results)]
    proc = subprocess.Popen([sys.executable, "-m", "runners.compare", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp)})
    seen = b""
    while b"full seed 0: training" not in seen or b"full:" not in seen.split(b"full seed 0: training")[-1]:
        chunk = os.read(proc.stdout.fileno(), 4096)  # tqdm redraws with \r: read bytes, not lines
        assert chunk, seen.decode(errors="replace")[-2000:]
        seen += chunk
    [worker] = [c for c in psutil.Process(proc.pid).children() if "runners.job.worker" in _cmdline(c)]
    runs = results / "tweets" / "runs"
    assert list(runs.glob(".full-s0-*.job.json"))  # the job file, beside the run's record, while it trains
    time.sleep(1)  # the second run's progress bar is up: it is training; now stop it
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    out = seen + proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signum, out.decode(errors="replace")[-2000:]
    assert not psutil.pid_exists(worker.pid)  # stopped and reaped, not left training as an orphan
    recs = _records(results)
    assert recs["head"]["status"] == "ok"
    assert recs["full"]["status"] == "cancelled" and recs["full"]["error"] == f"interrupted ({cause})"
    table = (results / "tweets" / "comparison.md").read_text()
    assert "| head " in table and f"| seed 0: cancelled: interrupted ({cause})" in table
    assert f"interrupted ({cause}): finished runs are kept".encode() in out
    assert not list(results.rglob("*.tmp")) and not list(runs.glob(".*.job.json")) and not list(temp.iterdir())
    if not to_group:
        return
    head_written = recs["head"]["timestamp"]
    assert compare.main([*argv, "--quiet"]) == 0  # the same command again: head is kept, full runs
    assert "head seed 0: ok record exists" in capsys.readouterr().out
    recs = _records(results)
    assert recs["head"]["timestamp"] == head_written and recs["full"]["status"] == "ok"


def test_a_run_that_does_not_stop_is_killed_and_recorded_cancelled(tmp_path, make_job):
    path = tmp_path / "x-s0-abc.json"
    # The child starts with the stop signals held, as every worker does until its handlers are set; this one never
    # releases them, so it cannot be stopped, only killed.
    executor = SubprocessExecutor(command=[sys.executable, "-c", "import time; time.sleep(60)"], grace_s=1)
    timer = threading.Timer(1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGTERM))
    started = time.monotonic()
    with stop_on_signals(), pytest.raises(Stopped) as stopped:
        timer.start()
        executor.run(make_job(path))
    assert stopped.value.signum == signal.SIGTERM and time.monotonic() - started < 10
    record = json.loads(path.read_text())
    assert record["status"] == "cancelled"
    assert record["error"] == "interrupted (SIGTERM); killed after not stopping within 1 s"
    assert not [c for c in psutil.Process().children() if "time.sleep(60)" in _cmdline(c)]
