"""Two commands writing into one results folder never train the same run twice: a run is claimed before it starts,
the other waits for its record (a pool runs its other jobs meanwhile), and a claim whose claimant is gone is taken
over."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from test_pool import grid_jobs

from runners.execute import claims
from runners.execute.claims import Claim, Claims, Holder, claim_path
from runners.execute.pool import LocalPool
from runners.execute.serial import SubprocessExecutor
from runners.store.records import parse

FIXTURE = Path(__file__).parent / "fixtures" / "records" / "v1-with-ablate.json"


def _counting(counter: Path) -> list[str]:
    """The worker, counting its starts in `counter`."""
    code = (f"import runpy, sys; open({str(counter)!r}, 'a').write('run\\n'); "
            "runpy.run_module('runners.job.worker', run_name='__main__')")
    return [sys.executable, "-c", code]


def test_two_commands_on_one_run_train_it_once_and_both_get_its_record(tmp_path, tiny_model_dir, tweets_dir):
    [job] = grid_jobs(tmp_path, tiny_model_dir, tweets_dir, methods=("head",), budget="16samples")
    counter = tmp_path / "starts"
    first, second = (SubprocessExecutor(command=_counting(counter)) for _ in range(2))
    second.poll_s = 0.2
    got = {}
    threads = [threading.Thread(target=lambda name, ex: got.update({name: ex.run(job)}), args=(name, ex))
               for name, ex in (("first", first), ("second", second))]
    threads[0].start()
    while not claim_path(job).exists():  # the first holds it: the second must wait
        time.sleep(0.01)
    held = json.loads(claim_path(job).read_text())
    assert held["host"] == socket.gethostname() and held["pid"] == os.getpid()
    threads[1].start()
    for t in threads:
        t.join(timeout=120)
    assert counter.read_text() == "run\n"  # trained once
    assert got["first"].status.value == "ok" and got["second"] == got["first"]
    assert not claim_path(job).exists()


def test_a_pool_runs_its_other_jobs_while_another_command_holds_one_then_takes_its_record(tmp_path, make_job):
    folder = tmp_path / "runs"
    jobs = [make_job(folder / f"{rid}.json") for rid in ("held-s0-a", "free-s0-b")]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another live command
    try:
        folder.mkdir()
        claim_path(jobs[0]).write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid,
                                                   "since": time.time(), "token": "theirs"}))
        counter = tmp_path / "starts"
        pool = LocalPool(2, quiet=True, command=[sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x')"])
        pool.poll_s = 0.2

        def finish():  # the other command writes the held run's record, then lets its claim go
            time.sleep(1)
            Path(jobs[0].record_path).write_text(parse(FIXTURE.read_text()).to_json())
            claim_path(jobs[0]).unlink()

        threading.Thread(target=finish).start()
        with pool:
            records = list(pool.map(jobs))
    finally:
        other.kill()
        other.wait()
    # the free one first (its fake worker writes no record: failed), then the held one, trained elsewhere
    assert [r.status.value for r in records] == ["failed", "ok"] and counter.read_text() == "x"
    assert records[1] == parse(Path(jobs[0].record_path).read_text())
    assert not list(folder.glob(".*"))


def test_a_claim_is_taken_over_when_its_claimant_is_gone(tmp_path, monkeypatch, make_job):
    job = make_job(tmp_path / "x-s0-abc.json")
    path = claim_path(job)
    assert path == tmp_path / ".x-s0-abc.claim"  # beside the record; `*.json` globs do not see it
    mine, theirs = Claims(), Claims()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    for holder, age, taken in [
        ({"host": host, "pid": os.getpid()}, 0, False),  # alive, on this host
        ({"host": host, "pid": dead.pid}, 0, True),  # its process is gone
        ({"host": "elsewhere", "pid": dead.pid}, 0, False),  # another host's pid says nothing here
        ({"host": "elsewhere", "pid": 1}, claims.STALE_AFTER_S + 1, True),  # not refreshed: its command died
        (None, 0, False),  # being written this instant
    ]:
        path.write_text("" if holder is None else json.dumps({**holder, "since": time.time(), "token": "t"}))
        os.utime(path, (time.time() - age,) * 2)
        got = mine.take(job)
        assert isinstance(got, Claim) is taken, (holder, age)
        if taken:
            assert json.loads(path.read_text())["pid"] == os.getpid()
            assert isinstance(theirs.take(job), Holder)  # and now it is held, for everyone else
            mine.release(got)
            assert not path.exists()
        else:
            assert got == Holder(None, None, None) if holder is None else got.host == holder["host"]
    path.write_text(json.dumps({"host": host, "pid": os.getpid(), "since": 0, "token": "someone else's"}))
    mine.release(Claim(path, "mine"))  # a claim taken over meanwhile is not removed by its former holder
    assert path.exists()
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)  # held claims are refreshed while their runs last
    path.unlink()
    holder = Claims()
    holder.take(job)
    os.utime(path, (0, 0))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 5
    holder.close()
    assert not path.exists()


def test_a_serial_command_says_a_run_is_training_only_once_it_holds_the_claim(tmp_path, capsys, make_job):
    from runners.execute.progress import execute
    from runners.planning.estimate import Clock, History

    folder = tmp_path / "runs"
    folder.mkdir()
    job = make_job(folder / "x-s0-abc.json")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another live command
    try:
        claim_path(job).write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid,
                                               "since": time.time(), "token": "theirs"}))

        def finish():  # the other command writes the run's record, then lets its claim go
            time.sleep(1)
            Path(job.record_path).write_text(parse(FIXTURE.read_text()).to_json())
            claim_path(job).unlink()

        threading.Thread(target=finish).start()
        executor = SubprocessExecutor(command=[sys.executable, "-c", "raise SystemExit(1)"])
        executor.poll_s = 0.2
        with executor:
            assert execute(executor, [job], Clock(History(tmp_path), "key")) == []
    finally:
        other.kill()
        other.wait()
    out = capsys.readouterr().out
    assert "full seed 0: " in out and "is training it; waiting for its record" in out
    assert "training (" not in out  # it never trained here: the other command's record is kept
