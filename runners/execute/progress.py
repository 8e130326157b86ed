"""What a user sees while runs execute: one line as each run starts and as it ends. Concurrent runs (a pool, Ray)
are said by `Progress`, with the status, test accuracy and time of each, under one overall bar (runs done of the
total, ETA); one at a time, by `execute`, under the run's own progress bar (several redrawing at once would garble
the terminal)."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from runners.core.files import duration
from runners.core.signals import Stopped
from runners.job.spec import Job
from runners.store.schema import Record

if TYPE_CHECKING:
    from runners.planning.estimate import Clock


def job_name(job: Job) -> str:
    """A run as the lines name it: `lora seed 0`, with its rate where it was searched or is a search trial."""
    return job.name


class Progress:
    """Lines on stdout, and with `quiet` off, the overall bar on stderr (redrawn under the lines, not between)."""

    def __init__(self, total: int | None, quiet: bool = False, name: Callable[[Job], str] | None = None):
        self.name = name or job_name
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="runs", unit="run", dynamic_ncols=True, file=sys.stderr)

    def started(self, job: Job, where: str = "") -> None:
        self.say(f"{self.name(job)}: started{f' {where}' if where else ''} ({job.run_id})")

    def waiting(self, job: Job, holder: str) -> None:
        self.say(f"{self.name(job)}: {holder} is training it; waiting for its record")

    def finished(self, job: Job, record: Record, seconds: float | None, where: str = "") -> None:
        parts = [record.status.value]
        if record.metrics is not None:
            parts.append(f"test acc {record.metrics.accuracy:.4f}")
        if seconds is not None:
            parts.append(duration(seconds))
        self.say(f"{self.name(job)}: {', '.join(parts)}{f' {where}' if where else ''}")
        self.advance()

    def done_elsewhere(self, job: Job, record: Record) -> None:
        self.say(f"{self.name(job)}: {record.status.value}, trained by another command meanwhile; its record is kept")
        self.advance()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
            sys.stdout.flush()
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def execute(executor, jobs: list[Job], clock: Clock, expected: tuple = ()) -> list[str]:
    """Run the jobs through the executor, saying at once when one does not end ok; return those (less the ones
    whose status is `expected`, such as a search trial that diverged: said, but not a fault of the command). A pool
    announces its runs itself (one overall bar, a line as each starts and ends); one at a time, they are said here,
    once the executor holds a run's claim (while another command trains it, the executor says so instead)."""
    if not jobs:
        return []
    not_ok, current = [], {}

    def started(job: Job) -> None:
        current["job"] = job
        print(f"{job_name(job)}: training ({job.run_id})", flush=True)

    executor.on_start = None if executor.announces else started
    try:
        for record in executor.map(jobs):
            current.pop("job", None)
            clock.ended(record, executor.walls.get(record.run_id))
            if not record.ok:  # said at once, not only in the table at the end
                name = record.config.name
                if record.status not in expected:
                    not_ok.append(f"{name} ({record.status.value})")
                print(f"{name}: {record.status.value}: {record.error}", file=sys.stderr)
    except Stopped as e:
        if "job" in current and not executor.announces:
            print(f"{job_name(current['job'])}: cancelled: interrupted ({e.cause})", file=sys.stderr)
        raise
    return not_ok
