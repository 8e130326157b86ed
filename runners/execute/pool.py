"""Several runs at once: the dispatch loop that concurrent executors share (claims, progress lines, Ctrl-C), and the
local pool, which keeps N `python -m runners.job.worker JOB.json` processes going, each in its own slot.

A slot is one GPU (CUDA_VISIBLE_DEVICES in the child names it) or, on the CPU, an equal share of the cores (torch's
and OpenMP's threads set in the child), so that concurrent runs do not fight over the same cores. Records come back
in the order runs end. On SIGINT or SIGTERM the jobs not yet started are dropped, the running ones are passed the
signal and record themselves `cancelled` (killed after `grace_s`), the finished ones are kept, and `Stopped` is
raised with the cancelled runs' records in `Stopped.cancelled`.
"""
from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runners.core.signals import Stopped, as_stopped, signals_held
from runners.execute.claims import Claim, Holder
from runners.execute.executor import BaseExecutor, child_env, placement, settle, worker_command, write_job
from runners.execute.progress import Progress
from runners.execute.serial import SubprocessExecutor
from runners.job.spec import Job
from runners.store.schema import Record, Status


@dataclass
class Running:
    """A run an executor has started (or, on Ray, submitted: `begun` once a node took it)."""

    job: Job  # as handed to the worker: with its placement
    claim: Claim
    slot: int
    started: float  # time.time() at the start; a record older than this is not this run's
    where: str = ""  # for the progress lines: "[slot 1]", "on node 1a2b3c4d (10.0.0.5)"
    begun: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # the executor's own: process, job file, attempt...


class Dispatcher(BaseExecutor):
    """Up to `workers` runs at once (None: as many as the backend accepts); subclasses start, wait for and stop them.

    `map` claims each job before starting it; a job another command holds is set aside and looked at again every
    `poll_s` while the others run, then its record is taken, or, if that command did not leave an ok one, it runs."""

    announces = True
    grace_s = SubprocessExecutor.grace_s

    def __init__(self, workers: int | None, quiet: bool = False, name: Callable[[Job], str] | None = None):
        super().__init__(name)
        self.workers = workers
        self.quiet = quiet
        self.progress: Progress | None = None
        self._running: dict[Any, Running] = {}

    # What a backend implements.
    def _start(self, job: Job, claim: Claim, slot: int) -> None:
        """Start the job (signals held) and register it in `self._running` under a key of the backend's."""
        raise NotImplementedError

    def _wait(self, timeout: float) -> list[tuple[Any, Any]]:
        """Wait up to `timeout` s; (key, outcome) for each run that ended. May mark runs `begun` (`_begin`)."""
        raise NotImplementedError

    def _ended(self, run: Running, outcome: Any) -> Record | None:
        """The ended run's record, written; None when the backend started it again (a retry, under a new key)."""
        raise NotImplementedError

    def _cancel(self, runs: list[Running], stop: Stopped) -> list[Record]:
        """Stop these runs; the records of those that had begun (cancelled, or whatever they ended with)."""
        raise NotImplementedError

    def run(self, job: Job) -> Record:
        for record in self.map([job]):
            return record
        raise RuntimeError("map returned no record")  # unreachable: every job ends in a record or an exception

    def map(self, jobs: Iterable[Job], total: int | None = None) -> Iterator[Record]:
        """The jobs' records in the order the runs end. `total`: how many jobs, when `jobs` has no len()."""
        todo = iter(jobs)
        total = len(jobs) if hasattr(jobs, "__len__") else total
        self.progress = progress = Progress(total, self.quiet, self.name)
        waiting: list[tuple[float, Job]] = []  # (when to look again, job): another command holds them
        said: set[str] = set()
        exhausted = False
        try:
            while True:
                while self.workers is None or len(self._running) < self.workers:
                    now = time.monotonic()
                    if waiting and waiting[0][0] <= now:
                        job = waiting.pop(0)[1]
                    elif not exhausted and (job := next(todo, None)) is None:
                        exhausted = True
                        continue
                    elif exhausted:
                        break
                    got = self.claims.take(job)
                    if isinstance(got, Holder):
                        if job.run_id not in said:
                            progress.waiting(job, got.describe())
                            said.add(job.run_id)
                        waiting.append((now + self.poll_s, job))
                        continue
                    if (done := self.done_elsewhere(job)) is not None:
                        self.claims.release(got)
                        progress.done_elsewhere(job, done)
                        yield done
                        continue
                    self.ran.add(job.run_id)
                    self._start(job, got, self._free_slot())
                if not self._running:
                    if exhausted and not waiting:
                        return
                    time.sleep(max(0.0, waiting[0][0] - time.monotonic()))
                    continue
                timeout = min(1.0, max(0.0, waiting[0][0] - time.monotonic())) if waiting else 1.0
                for key, outcome in self._wait(timeout):
                    run = self._running.pop(key, None)
                    if run is None:  # it was stopped meanwhile
                        continue
                    record = self._ended(run, outcome)
                    if record is None:
                        continue
                    self.claims.release(run.claim)
                    self.walls[run.job.run_id] = time.time() - run.started
                    progress.finished(run.job, record, self.walls[run.job.run_id], run.where)
                    if record.status is Status.CANCELLED:  # a signal to the run alone stops the command too
                        stop = Stopped(_signum(record))
                        stop.cancelled.append(record)
                        raise stop
                    yield record
        except BaseException as e:  # Stopped, the caller closing the iterator, a bug: nothing keeps running
            stop = as_stopped(e) if isinstance(e, KeyboardInterrupt) else Stopped(
                signal.SIGTERM, "the command stopped early" if isinstance(e, GeneratorExit) else
                f"the command failed: {type(e).__name__}: {e}")
            stop.cancelled += self._stop_all(stop)
            if stop is not e and isinstance(e, KeyboardInterrupt):
                raise stop from None
            raise
        finally:
            progress.close()

    def _begin(self, key: Any, where: str) -> None:
        run = self._running[key]
        run.begun, run.where, run.started = True, where, time.time()
        self.progress.started(run.job, where)

    def _free_slot(self) -> int:
        used = {r.slot for r in self._running.values()}
        return next(i for i in range(len(used) + 1) if i not in used)

    def _stop_all(self, stop: Stopped) -> list[Record]:
        runs = list(self._running.values())
        self._running.clear()
        if not runs:
            return []
        records = self._cancel(runs, stop)
        for run in runs:
            self.claims.release(run.claim)
        by_id = {r.run_id: r for r in records}
        for run in runs:
            if run.job.run_id in by_id and self.progress is not None:
                self.progress.finished(run.job, by_id[run.job.run_id], time.time() - run.started, run.where)
        return records

    def shutdown(self, wait: bool = True) -> None:
        self._stop_all(Stopped(signal.SIGTERM, "the command ended before this run"))
        super().shutdown(wait)

    def __exit__(self, exc_type, exc, tb) -> None:
        stop = as_stopped(exc) if isinstance(exc, KeyboardInterrupt) else None
        if stop is not None:  # it came while the caller held a record, outside `map`: the runs get its signal
            stop.cancelled += self._stop_all(stop)
        self.shutdown()
        if stop is not None and stop is not exc:
            raise stop from None


def _signum(record: Record) -> int:
    return signal.SIGTERM if "SIGTERM" in (record.error or "") else signal.SIGINT


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a container's or taskset's share)
    except AttributeError:
        return os.cpu_count() or 1


class LocalPool(Dispatcher):
    """`workers` worker processes at a time on this machine, each in its own slot: GPU `gpus[slot % len(gpus)]`, or,
    without GPUs, `cores // workers` threads. Starts no process of its own besides the runs'."""

    kind = "local-pool"

    def __init__(self, workers: int, gpus: Iterable[str] = (), quiet: bool = False,
                 name: Callable[[Job], str] | None = None, command: list[str] | None = None,
                 grace_s: float | None = None):
        super().__init__(workers, quiet, name)
        self.gpus = list(gpus)
        self.threads = None if self.gpus else max(1, cpu_cores() // workers)
        self.command = command or worker_command()
        if grace_s is not None:
            self.grace_s = grace_s
        self._ended_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._keys = itertools.count()  # not the pid: a pid is free again once its process is reaped

    def _slot_env(self, slot: int) -> tuple[dict[str, str], dict]:
        env = child_env()
        if self.gpus:
            gpu = self.gpus[slot % len(self.gpus)]
            env["CUDA_VISIBLE_DEVICES"] = gpu
            return env, {"gpu": gpu}
        threads = str(self.threads)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PEFT_LAB_THREADS=threads)
        return env, {"threads": self.threads}

    def _start(self, job: Job, claim: Claim, slot: int) -> None:
        env, share = self._slot_env(slot)
        job = job.with_(quiet=job.quiet or self.workers > 1,  # one bar per run only when alone
                        placement=placement(self.kind, slot, concurrent=self.workers, **share))
        started = time.time()
        with signals_held():  # as in SubprocessExecutor.run: the child starts with the stop signals held
            path = write_job(job)
            try:
                proc = subprocess.Popen([*self.command, str(path)], env=env)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            key = next(self._keys)
            self._running[key] = Running(job, claim, slot, started, f"[slot {slot}]",
                                         extra={"proc": proc, "path": path})
        threading.Thread(target=lambda: self._ended_queue.put((key, proc.wait())), daemon=True).start()
        self.progress.started(job, f"[slot {slot}]")

    def _wait(self, timeout: float) -> list[tuple[Any, Any]]:
        try:
            ended = [self._ended_queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                ended.append(self._ended_queue.get_nowait())
            except queue.Empty:
                return ended

    def _ended(self, run: Running, code: int) -> Record:
        run.extra["path"].unlink(missing_ok=True)
        with signals_held():
            return settle(run.job, run.started, code, None)

    def _cancel(self, runs: list[Running], stop: Stopped) -> list[Record]:
        procs = [r.extra["proc"] for r in runs]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(stop.signum)  # a terminal's Ctrl-C reached them already; `kill PID` did not
        deadline = time.monotonic() + self.grace_s
        try:
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:  # asked twice: no more waiting
            pass
        with signals_held():
            records = []
            for run, proc in zip(runs, procs):
                killed = None
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    killed = f"killed after not stopping within {self.grace_s:g} s"
                run.extra["path"].unlink(missing_ok=True)
                records.append(settle(run.job, run.started, proc.returncode, stop, killed))
            return records
