"""What a user sees while runs execute concurrently: one line as each run starts and as it ends (status, test
accuracy, time), under one overall bar (runs done of the total, ETA). A run's own progress bar is for the one-worker
case only: several redrawing at once would garble the terminal."""
from __future__ import annotations

import sys
from collections.abc import Callable

from runners.record import Record


def job_name(job: dict) -> str:
    cfg = job["config"]
    return f"{cfg['method']} seed {cfg['seed']}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """Lines on stdout, and with `quiet` off, the overall bar on stderr (redrawn under the lines, not between)."""

    def __init__(self, total: int | None, quiet: bool = False, name: Callable[[dict], str] | None = None):
        self.name = name or job_name
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="runs", unit="run", dynamic_ncols=True, file=sys.stderr)

    def started(self, job: dict, where: str = "") -> None:
        self.say(f"{self.name(job)}: started{f' {where}' if where else ''} ({job['run_id']})")

    def waiting(self, job: dict, holder: str) -> None:
        self.say(f"{self.name(job)}: {holder} is training it; waiting for its record")

    def finished(self, job: dict, record: Record, seconds: float | None, where: str = "") -> None:
        parts = [record.status.value]
        if record.metrics is not None:
            parts.append(f"test acc {record.metrics.accuracy:.4f}")
        if seconds is not None:
            parts.append(duration(seconds))
        self.say(f"{self.name(job)}: {', '.join(parts)}{f' {where}' if where else ''}")
        self.advance()

    def done_elsewhere(self, job: dict, record: Record) -> None:
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
