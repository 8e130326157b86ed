"""Where runs execute: hand an executor jobs, get records back; also the signals that stop a run, and exit codes.

`SubprocessExecutor` runs each job, one at a time and in order, in a fresh `python -m runners.worker JOB.json`
process; `InProcessExecutor` runs it in this process (tests, debuggers). A local pool or Ray would sit behind the
same `run`/`map`, the shape of `concurrent.futures.Executor`, so the comparison never knows which ran its jobs.
"""
from __future__ import annotations

import enum
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runners.record import Record, Status
from runners.records import base_record, read_record, write_record

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ExitCode(enum.IntEnum):
    """What `runners.compare` exits with; a worker exits 0, 1 (failed) or, when a signal stopped it, 128 + signal."""

    OK = 0
    ERROR = 1  # anything unexpected: disk full, no permission, a bug
    USER_MISTAKE = 2  # a bad flag, spec or file: one line on stderr, before any run starts
    RUN_NOT_OK = 3  # a run of this command ended failed, oom, diverged...: its console line and table row say why
    SIGINT = 128 + signal.SIGINT  # 130: the shell's 128 + N for "stopped by signal N"
    SIGTERM = 128 + signal.SIGTERM  # 143


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. Raised wherever the main thread was, as Ctrl-C's KeyboardInterrupt is (and caught
    wherever that is), carrying which signal asked."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def cause(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals(once: bool = False) -> Iterator[None]:
    """Inside, SIGINT and SIGTERM raise `Stopped` (by default SIGTERM ends a process on the spot, with no cleanup and
    its children left running). A signal set to be ignored (`nohup`, a background job) stays ignored. `once`: the
    first signal raises and later ones are ignored, so that they cannot cut short the cleanup the first started."""
    if not _main_thread():
        yield
        return

    def handler(signum, frame):
        if once:
            ignore_stop_signals()
        raise Stopped(signum)

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, signal.SIG_DFL if old is None else old)


def ignore_stop_signals() -> None:
    if _main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # only the main thread may set handlers


def release_held_signals() -> None:
    """Deliver the stop signals held since this process started (see `SubprocessExecutor.run`); call it once the
    handlers that turn them into a `cancelled` record are set."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def _signals_held() -> Iterator[None]:
    """A stop signal that arrives inside is held, not lost, and raises as usual once the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Serial:
    """Runs jobs one at a time, in order. `run(job)` returns the run's record as written to `job["record_path"]`;
    when a signal stopped the run, it raises `Stopped` after the run's `cancelled` record is written."""

    def run(self, job: dict) -> Record:
        raise NotImplementedError

    def map(self, jobs: Iterable[dict]) -> Iterator[Record]:
        for job in jobs:
            yield self.run(job)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing outlives a serial `run`; a pool would stop its workers here."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


class SubprocessExecutor(_Serial):
    """Each job in a fresh `python -m runners.worker JOB.json` process: a crash, a leak or an out-of-memory kill ends
    that run alone, and every run starts from the same state. A SIGINT or SIGTERM to this process is passed on to
    the run, which records itself `cancelled`; one that does not stop within `grace_s` is killed."""

    # Long enough to finish a training step or an evaluation batch and write the record; schedulers and
    # `docker stop` send SIGKILL 10-30 s after SIGTERM, and the parent still needs to write the tables.
    grace_s = 10.0

    def __init__(self, command: list[str] | None = None, grace_s: float | None = None):
        self.command = command or [sys.executable, "-m", "runners.worker"]
        if grace_s is not None:
            self.grace_s = grace_s

    def run(self, job: dict) -> Record:
        job_path = proc = stop = None
        started = time.time()
        try:
            # Held until the parent has the job file's path and the child's pid, so nothing can stop it in between.
            # The child inherits the held mask: a signal while Python and torch load waits for the worker's handler
            # (`release_held_signals`), which records the run `cancelled`, instead of a traceback or a silent death.
            with _signals_held():
                job_path = _write_job(job)
                proc = subprocess.Popen([*self.command, str(job_path)], env=_child_env())
            code = proc.wait()
        except Stopped as e:
            stop = e
            code = self._wait_stopping(proc, e.signum)
        finally:
            if job_path is not None:
                job_path.unlink(missing_ok=True)
        with _signals_held():  # from here to the record nothing is cut short; a further signal raises after it
            killed = None
            if code is None:
                proc.kill()
                code = proc.wait()
                killed = f"killed after not stopping within {self.grace_s:g} s"
            record = _settle(job, started, code, stop, killed)
        _raise_if_cancelled(record, code, stop)
        return record

    def _wait_stopping(self, proc: subprocess.Popen, signum: int) -> int | None:
        """Pass the signal on and wait for the run to record itself cancelled; None if it has to be killed."""
        proc.send_signal(signum)  # a terminal's Ctrl-C reached it already; `kill PID`, `timeout`, a scheduler did not
        try:
            return proc.wait(timeout=self.grace_s)
        except (subprocess.TimeoutExpired, Stopped):  # it does not stop, or the user asked twice: no more waiting
            return None


class InProcessExecutor(_Serial):
    """Each job in this process through `worker.main`, as the child would, minus the interpreter start: for tests,
    and for a debugger that should step into a run. A crash here ends the comparison."""

    def run(self, job: dict) -> Record:
        from runners import worker

        started = time.time()
        job_path = _write_job(job)
        try:
            code = worker.main(str(job_path))
        finally:
            job_path.unlink(missing_ok=True)
        record = _settle(job, started, code, None)
        _raise_if_cancelled(record, code, None)
        return record


def _write_job(job: dict) -> Path:
    fd, path = tempfile.mkstemp(prefix="peft-lab-job-", suffix=".json")  # private (0600): it is ours alone
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    return Path(path)


def _child_env() -> dict[str, str]:
    from runners.environment import PROJECT_ROOT

    # `-m runners.worker` must find this checkout from whatever folder the user ran the comparison in
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _settle(job: dict, started: float, code: int, stop: Stopped | None, killed: str | None = None) -> Record:
    """The run's record: the one its process wrote, or, when it wrote none, one written here saying why."""
    from runners.environment import now

    path = Path(job["record_path"])
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
    return write_record(path, {**base_record(job, status, error), "timestamp": now()})


def _raise_if_cancelled(record: Record, code: int, stop: Stopped | None) -> None:
    """A cancelled run stops the comparison, also when the signal went to the run's process alone."""
    if stop is None and record.status is Status.CANCELLED:
        stop = Stopped(code - 128 if code - 128 in STOP_SIGNALS else signal.SIGINT)
    if stop is not None:
        raise stop
