"""Exit codes and the signals that stop a run: SIGINT and SIGTERM become `Stopped`, raised where the main thread is,
so that every layer (a run's own process, the executors, the commands) ends in a record and an exit code that say
which signal asked."""
from __future__ import annotations

import enum
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runners.store.schema import Record

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
