"""Where runs execute: hand an executor jobs, get records back; also the signals that stop a run, and exit codes.

`SubprocessExecutor` runs each job, one at a time and in order, in a fresh `python -m runners.job.worker JOB.json`
process; `InProcessExecutor` runs it in this process (tests, debuggers); `runners.execute.pool.LocalPool` runs N at
once, each in its own slot (a GPU, or a share of the cores); `runners.execute.ray.RayExecutor` runs them on a Ray
cluster. All have the shape of `concurrent.futures.Executor` (`run`, `map`, a context manager), so the comparison never
knows which ran its jobs: `make_executor` picks one from the command's flags. Every executor claims a run before it
starts it (`runners.execute.claims`), so two commands sharing a results folder never train the same run twice. """
from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from runners.core.signals import STOP_SIGNALS, Stopped
from runners.execute.claims import Claim, Claims
from runners.job.spec import Job
from runners.store.records import read_record, write_record
from runners.store.schema import Record, Status


class BaseExecutor:
    """The executor contract. `run(job)` returns the run's record as written to `job.record_path`; `map(jobs)`
    yields the jobs' records (here one at a time, in order; a pool's in the order they end). When a signal stopped a
    run, they raise `Stopped` after the run's `cancelled` record is written. `shutdown` (and leaving the `with`
    block) stops whatever still runs.

    The run is claimed first (`runners.execute.claims`): while another command trains it, this one waits, then returns
    the record that one wrote instead of training the run again."""

    kind = "serial"  # the executor's name in a record's `device`
    announces = False  # True: `map` prints each run's start and end itself (execute.progress); its caller need not
    poll_s = 2.0  # how often a run another command holds is looked at again
    # Called with the job once this executor holds the run's claim, just before the run starts: where a caller that
    # announces runs itself says one is training (not before the claim: another command may be training it).
    on_start: Callable[[dict], None] | None = None

    def __init__(self, name: Callable[[Job], str] | None = None):
        from runners.execute.progress import job_name

        self.name = name or job_name
        self.claims = Claims()
        self.since = time.time()  # a record written after this, while this command waited, is another's fresh one
        self.ran: set[str] = set()  # the run ids this executor started: their records are its own, not another's
        self.walls: dict[str, float] = {}  # each run it ran: seconds from its start to its record (for the estimate)

    def run(self, job: Job) -> Record:
        claim = self._claim(job)
        if isinstance(claim, Record):
            return claim
        try:
            self.ran.add(job.run_id)
            if self.on_start is not None:
                self.on_start(job)
            started = time.monotonic()
            where = {**placement(self.kind, 0, concurrent=1), **job.placement}
            record = self._run(job.with_(placement=where))
            self.walls[job.run_id] = time.monotonic() - started
            return record
        finally:
            self.claims.release(claim)

    def _run(self, job: Job) -> Record:
        raise NotImplementedError

    def _claim(self, job: Job) -> Claim | Record:
        """The run's claim, once no other live command holds it; or the ok record another wrote meanwhile."""
        said = False
        while True:
            got = self.claims.take(job)
            if isinstance(got, Claim):
                done = self.done_elsewhere(job)
                if done is None:
                    return got
                self.claims.release(got)
                print(f"{self.name(job)}: trained by another command meanwhile; its record is kept", flush=True)
                return done
            if not said:
                print(f"{self.name(job)}: {got.describe()} is training it; waiting for its record", flush=True)
                said = True
            time.sleep(self.poll_s)

    def done_elsewhere(self, job: Job) -> Record | None:
        """The run's ok record, when another command wrote it while this one planned or waited."""
        return None if job.run_id in self.ran else done_elsewhere(job, self.since)

    def map(self, jobs: Iterable[Job]) -> Iterator[Record]:
        for job in jobs:
            yield self.run(job)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing outlives a serial `run`; a pool stops its runs here."""
        self.claims.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def done_elsewhere(job: Job, since: float) -> Record | None:
    """The run's ok record, when another command wrote it after `since` (while this one planned or waited)."""
    path = Path(job.record_path)
    try:
        if path.stat().st_mtime < since:
            return None
    except FileNotFoundError:
        return None
    record = read_record(path)
    return record if record is not None and record.ok else None


def placement(kind: str, slot: int | str | None, **more) -> dict:
    """Where a run ran, for its record's `device`: the executor, its slot, the host, and more (threads, GPU, node)."""
    return {"executor": kind, "slot": slot, "host": socket.gethostname(), **more}


def worker_command() -> list[str]:
    return [sys.executable, "-m", "runners.job.worker"]


def job_path(job: Job) -> Path:
    """Where a run's job file goes: beside its record, named by its run id (`.RUN_ID.job.json`). Only the command
    holding the run's claim writes it, and it is removed when the run ends; a command killed outright (kill -9)
    leaves it, and the next command that runs the same run (the same command again) replaces and removes it,
    rather than leaving it in the system's temporary folder for ever."""
    return Path(job.record_path).with_name(f".{job.run_id}.job.json")


def write_job(job: Job) -> Path:
    path = job_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private: it is this command's alone
    with os.fdopen(fd, "w") as f:
        f.write(job.to_json())
    return path


def child_env() -> dict[str, str]:
    from runners.core.files import PROJECT_ROOT

    # `-m runners.job.worker` must find this checkout from whatever folder the user ran the comparison in
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def settle(job: Job, started: float, code: int, stop: Stopped | None, killed: str | None = None) -> Record:
    """The run's record: the one its process wrote, or, when it wrote none, one written here saying why."""
    from runners.store.context import now

    path = Path(job.record_path)
    record = read_record(path)
    if record is not None and path.stat().st_mtime >= started:  # an older record of the same run may be there
        return record
    if killed:  # it may have died halfway through writing its record
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if stop is not None:
        status, error = Status.CANCELLED, f"interrupted ({stop.cause}); " + (
            killed or "the run process ended before the run started training")
    else:
        why = f"signal {-code}" if code < 0 else f"exit code {code}"
        status, error = Status.FAILED, f"run process died ({why}) before writing its record" + (
            "; killed, perhaps for lack of memory" if code == -signal.SIGKILL else "")
    return write_record(path, {**job.base_record(status, error), "timestamp": now()})


def _raise_if_cancelled(record: Record, code: int, stop: Stopped | None) -> None:
    """A cancelled run stops the comparison, also when the signal went to the run's process alone."""
    if stop is None and record.status is Status.CANCELLED:
        stop = Stopped(code - 128 if code - 128 in STOP_SIGNALS else signal.SIGINT)
    if stop is not None:
        raise stop
