"""Where runs execute: hand an executor jobs, get records back; also the signals that stop a run, and exit codes.

`SubprocessExecutor` runs each job, one at a time and in order, in a fresh `python -m runners.worker JOB.json`
process; `InProcessExecutor` runs it in this process (tests, debuggers); `runners.pool.LocalPool` runs N at once,
each in its own slot (a GPU, or a share of the cores); `runners.ray_executor.RayExecutor` runs them on a Ray cluster.
All have the shape of `concurrent.futures.Executor` (`run`, `map`, a context manager), so the comparison never knows
which ran its jobs: `make_executor` picks one from the command's flags. Every executor claims a run before it starts
it (`runners.claims`), so two commands sharing a results folder never train the same run twice.
"""
from __future__ import annotations

import enum
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runners.claims import Claim, Claims
from runners.errors import UserError
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

    def __init__(self, signum: int = signal.SIGINT, reason: str | None = None):
        super().__init__(reason or signal.Signals(signum).name)
        self.signum = int(signum)
        self.reason = reason  # when no signal asked: why the runs were stopped (the command itself ended early)
        self.cancelled: list[Record] = []  # a pool's runs that were running when it came, each recorded

    @property
    def cause(self) -> str:
        if self.reason:
            return self.reason
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
        global _last_signal
        if once:
            ignore_stop_signals()
        _last_signal = signum
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


_last_signal = signal.SIGINT  # the last stop signal `stop_on_signals` turned into `Stopped`


def as_stopped(e: KeyboardInterrupt) -> Stopped:
    """A `KeyboardInterrupt` as `Stopped`: a library that catches the `Stopped` a signal raised inside its code and
    raises a plain `KeyboardInterrupt` instead (Ray does) loses which signal it was; this is the last one that came."""
    return e if isinstance(e, Stopped) else Stopped(_last_signal)


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
def signals_held() -> Iterator[None]:
    """A stop signal that arrives inside is held, not lost, and raises as usual once the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class BaseExecutor:
    """The executor contract. `run(job)` returns the run's record as written to `job["record_path"]`; `map(jobs)`
    yields the jobs' records (here one at a time, in order; a pool's in the order they end). When a signal stopped a
    run, they raise `Stopped` after the run's `cancelled` record is written. `shutdown` (and leaving the `with`
    block) stops whatever still runs.

    The run is claimed first (`runners.claims`): while another command trains it, this one waits, then returns the
    record that one wrote instead of training the run again."""

    kind = "serial"  # the executor's name in a record's `device`
    announces = False  # True: `map` prints each run's start and end itself (runners.progress), so its caller need not
    poll_s = 2.0  # how often a run another command holds is looked at again
    # Called with the job once this executor holds the run's claim, just before the run starts: where a caller that
    # announces runs itself says one is training (not before the claim: another command may be training it).
    on_start: Callable[[dict], None] | None = None

    def __init__(self, name: Callable[[dict], str] | None = None):
        from runners.progress import job_name

        self.name = name or job_name
        self.claims = Claims()
        self.since = time.time()  # a record written after this, while this command waited, is another's fresh one
        self.ran: set[str] = set()  # the run ids this executor started: their records are its own, not another's
        self.walls: dict[str, float] = {}  # each run it ran: seconds from its start to its record (runners.estimate)

    def run(self, job: dict) -> Record:
        claim = self._claim(job)
        if isinstance(claim, Record):
            return claim
        try:
            self.ran.add(job["run_id"])
            if self.on_start is not None:
                self.on_start(job)
            started = time.monotonic()
            where = {**placement(self.kind, 0, concurrent=1), **job.get("placement", {})}
            record = self._run({**job, "placement": where})
            self.walls[job["run_id"]] = time.monotonic() - started
            return record
        finally:
            self.claims.release(claim)

    def _run(self, job: dict) -> Record:
        raise NotImplementedError

    def _claim(self, job: dict) -> Claim | Record:
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

    def done_elsewhere(self, job: dict) -> Record | None:
        """The run's ok record, when another command wrote it while this one planned or waited."""
        return None if job["run_id"] in self.ran else done_elsewhere(job, self.since)

    def map(self, jobs: Iterable[dict]) -> Iterator[Record]:
        for job in jobs:
            yield self.run(job)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing outlives a serial `run`; a pool stops its runs here."""
        self.claims.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def done_elsewhere(job: dict, since: float) -> Record | None:
    """The run's ok record, when another command wrote it after `since` (while this one planned or waited)."""
    path = Path(job["record_path"])
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


class SubprocessExecutor(BaseExecutor):
    """Each job in a fresh `python -m runners.worker JOB.json` process: a crash, a leak or an out-of-memory kill ends
    that run alone, and every run starts from the same state. A SIGINT or SIGTERM to this process is passed on to
    the run, which records itself `cancelled`; one that does not stop within `grace_s` is killed."""

    # Long enough to finish a training step or an evaluation batch and write the record; schedulers and
    # `docker stop` send SIGKILL 10-30 s after SIGTERM, and the parent still needs to write the tables.
    grace_s = 10.0

    kind = "subprocess"

    def __init__(self, command: list[str] | None = None, grace_s: float | None = None,
                 name: Callable[[dict], str] | None = None):
        super().__init__(name)
        self.command = command or worker_command()
        if grace_s is not None:
            self.grace_s = grace_s

    def _run(self, job: dict) -> Record:
        job_path = proc = stop = None
        started = time.time()
        try:
            # Held until the parent has the job file's path and the child's pid, so nothing can stop it in between.
            # The child inherits the held mask: a signal while Python and torch load waits for the worker's handler
            # (`release_held_signals`), which records the run `cancelled`, instead of a traceback or a silent death.
            with signals_held():
                job_path = write_job(job)
                proc = subprocess.Popen([*self.command, str(job_path)], env=child_env())
            code = proc.wait()
        except Stopped as e:
            stop = e
            code = self._wait_stopping(proc, e.signum)
        finally:
            if job_path is not None:
                job_path.unlink(missing_ok=True)
        with signals_held():  # from here to the record nothing is cut short; a further signal raises after it
            killed = None
            if code is None:
                proc.kill()
                code = proc.wait()
                killed = f"killed after not stopping within {self.grace_s:g} s"
            record = settle(job, started, code, stop, killed)
        _raise_if_cancelled(record, code, stop)
        return record

    def _wait_stopping(self, proc: subprocess.Popen, signum: int) -> int | None:
        """Pass the signal on and wait for the run to record itself cancelled; None if it has to be killed."""
        proc.send_signal(signum)  # a terminal's Ctrl-C reached it already; `kill PID`, `timeout`, a scheduler did not
        try:
            return proc.wait(timeout=self.grace_s)
        except (subprocess.TimeoutExpired, Stopped):  # it does not stop, or the user asked twice: no more waiting
            return None


class InProcessExecutor(BaseExecutor):
    """Each job in this process through `worker.main`, as the child would, minus the interpreter start: for tests,
    and for a debugger that should step into a run. A crash here ends the comparison."""

    kind = "in-process"

    def _run(self, job: dict) -> Record:
        from runners import worker

        started = time.time()
        job_path = write_job(job)
        try:
            code = worker.main(str(job_path))
        finally:
            job_path.unlink(missing_ok=True)
        record = settle(job, started, code, None)
        _raise_if_cancelled(record, code, None)
        return record


def worker_command() -> list[str]:
    return [sys.executable, "-m", "runners.worker"]


def job_path(job: dict) -> Path:
    """Where a run's job file goes: beside its record, named by its run id (`.RUN_ID.job.json`). Only the command
    holding the run's claim writes it, and it is removed when the run ends; a command killed outright (kill -9)
    leaves it, and the next command that runs the same run (the same command again) replaces and removes it,
    rather than leaving it in the system's temporary folder for ever."""
    return Path(job["record_path"]).with_name(f".{job['run_id']}.job.json")


def write_job(job: dict) -> Path:
    path = job_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private: it is this command's alone
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    return path


def child_env() -> dict[str, str]:
    from runners.environment import PROJECT_ROOT

    # `-m runners.worker` must find this checkout from whatever folder the user ran the comparison in
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def settle(job: dict, started: float, code: int, stop: Stopped | None, killed: str | None = None) -> Record:
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


EXECUTORS = ("local", "ray")


def make_executor(kind: str = "local", workers: int | None = None, ray_address: str | None = None,
                  quiet: bool = False, device: str | None = None, name: Callable[[dict], str] | None = None,
                  serial: type | None = None):
    """The executor a command's flags ask for: `local` with one worker runs each job in its own process, in order
    (`SubprocessExecutor`); with more, `runners.pool.LocalPool` runs that many at once; `ray` runs them on a Ray
    cluster (`runners.ray_executor.RayExecutor`; `ray_address` None starts a local instance, "auto" or HOST:PORT
    joins one). `workers` defaults to one per visible GPU on CUDA, 1 on the CPU; `device` is the runs' device type
    ("cpu", "cuda"; None: CUDA when there is one). `quiet`: no overall progress bar. `name`: a job's name in lines.
    `serial`: the class for one local worker (default SubprocessExecutor; tests swap in InProcessExecutor)."""
    if kind not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UserError(f"--workers must be an integer >= 1, got {workers!r}")
    if kind == "ray":
        from runners.ray_executor import RayExecutor  # refuses, in one line, when ray is not installed

        return RayExecutor(address=ray_address, workers=workers, quiet=quiet, name=name)
    if ray_address is not None:
        raise UserError("--ray-address needs --executor ray")
    gpus = visible_gpus(device)
    workers = workers or max(len(gpus), 1)
    if workers == 1:
        return (serial or SubprocessExecutor)(name=name)
    from runners.pool import LocalPool

    return LocalPool(workers, gpus=gpus, quiet=quiet, name=name)


def visible_gpus(device: str | None = None) -> list[str]:
    """The CUDA devices a run may be given, as CUDA_VISIBLE_DEVICES names them in this process; none on the CPU."""
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return []
    names = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    count = torch.cuda.device_count()
    return names[:count] if names else [str(i) for i in range(count)]
