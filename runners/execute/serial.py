"""The executors that run one job at a time, in order: each in a fresh process (the default), or in this one (tests,
debuggers)."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from runners.core.signals import Stopped, signals_held
from runners.execute.executor import BaseExecutor, _raise_if_cancelled, child_env, settle, worker_command, write_job
from runners.job.spec import Job
from runners.store.schema import Record


class SubprocessExecutor(BaseExecutor):
    """Each job in a fresh `python -m runners.job.worker JOB.json` process: a crash, a leak or an out-of-memory kill
    ends
    that run alone, and every run starts from the same state. A SIGINT or SIGTERM to this process is passed on to
    the run, which records itself `cancelled`; one that does not stop within `grace_s` is killed."""

    # Long enough to finish a training step or an evaluation batch and write the record; schedulers and
    # `docker stop` send SIGKILL 10-30 s after SIGTERM, and the parent still needs to write the tables.
    grace_s = 10.0

    kind = "subprocess"

    def __init__(self, command: list[str] | None = None, grace_s: float | None = None,
                 name: Callable[[Job], str] | None = None):
        super().__init__(name)
        self.command = command or worker_command()
        if grace_s is not None:
            self.grace_s = grace_s

    def _run(self, job: Job) -> Record:
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

    def _run(self, job: Job) -> Record:
        from runners.job import worker

        started = time.time()
        job_path = write_job(job)
        try:
            code = worker.main(str(job_path))
        finally:
            job_path.unlink(missing_ok=True)
        record = settle(job, started, code, None)
        _raise_if_cancelled(record, code, None)
        return record
