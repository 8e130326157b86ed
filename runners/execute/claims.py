"""Claims: two commands writing into one results folder never train the same run at once.

Before a run starts, its executor creates `<runs>/.<run_id>.claim` beside where the record goes, atomically
(O_CREAT | O_EXCL: of two commands, exactly one creates it), holding the claimant's host, pid and start time. The
claim is removed once the run's record is written. Another command that finds it waits (or, in a pool, runs other
jobs first) and then takes the record the claimant wrote instead of training the run again.

A claim whose claimant is gone is taken over: on the same host when its pid is no longer alive; on any host when
it has not been refreshed for `STALE_AFTER_S` (the claimant refreshes the file's time every `HEARTBEAT_S` while the
run lasts, so an old claim means its command died, or its host did; hosts sharing a results folder need clocks
that agree to within minutes).
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runners.job.spec import Job

HEARTBEAT_S = 30.0  # how often a held claim's file time is refreshed
STALE_AFTER_S = 600.0  # a claim not refreshed for this long is abandoned; far above HEARTBEAT_S on a busy disk
_TAKEOVER_STALE_S = 60.0  # a takeover lock lives milliseconds: older, its holder died in between


@dataclass(frozen=True)
class Holder:
    """Who holds a claim, as its file says (host and pid None when the file cannot be read yet)."""

    host: str | None
    pid: int | None
    since: float | None

    def describe(self) -> str:
        if self.host is None:
            return "another command"
        return f"another command (host {self.host}, pid {self.pid})"


@dataclass(frozen=True)
class Claim:
    """A claim this process holds."""

    path: Path
    token: str


def claim_path(job: Job) -> Path:
    return Path(job.record_path).with_name(f".{job.run_id}.claim")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:  # a zombie (ended, not yet reaped by its parent) is as good as dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Claims:
    """The claims one executor holds; a daemon thread refreshes them every `HEARTBEAT_S` while they are held."""

    def __init__(self):
        self.host = socket.gethostname()
        self._held: dict[Path, Claim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, job: Job) -> Claim | Holder:
        """Claim the job's run: the claim, or who holds it when another live command does."""
        path = claim_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        for _ in range(100):  # each turn either creates the claim, or finds a live holder, or removed a stale one
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                seen = self._stat(path)
                if seen is None:  # released in between
                    continue
                holder = self._read(path)
                if not self._stale(holder, seen) or not self._take_over(path, seen):
                    return holder
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": self.host, "pid": os.getpid(), "since": time.time(), "token": token}, f)
            claim = Claim(path, token)
            with self._lock:
                self._held[path] = claim
                if self._thread is None:
                    self._thread = threading.Thread(target=self._heartbeat, name="claims-heartbeat", daemon=True)
                    self._thread.start()
            return claim
        return self._read(path)  # a storm of takeovers: treat it as held, and look again later

    def release(self, claim: Claim) -> None:
        """Remove the claim, if it is still ours (a command that found it stale may have taken it over)."""
        with self._lock:
            self._held.pop(claim.path, None)
        try:
            if json.loads(claim.path.read_text()).get("token") == claim.token:
                claim.path.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        for claim in list(self._held.values()):
            self.release(claim)
        self._stop.set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                paths = list(self._held)
            for path in paths:
                try:
                    os.utime(path)
                except OSError:
                    pass

    @staticmethod
    def _stat(path: Path) -> os.stat_result | None:
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None

    @staticmethod
    def _read(path: Path) -> Holder:
        try:
            data = json.loads(path.read_text())
            return Holder(str(data["host"]), int(data["pid"]), float(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):  # being written right now, or gone
            return Holder(None, None, None)

    def _stale(self, holder: Holder, seen: os.stat_result) -> bool:
        age = time.time() - seen.st_mtime
        if age > STALE_AFTER_S:
            return True
        if holder.host is None:  # created but not yet written: its claimant is between two system calls
            return age > _TAKEOVER_STALE_S
        return holder.host == self.host and not _alive(holder.pid)

    @staticmethod
    def _take_over(path: Path, seen: os.stat_result) -> bool:
        """Remove a stale claim, unless another command is doing so: two that find it stale at once must not
        both remove it (the second would remove the first's new claim). True when it was removed."""
        lock = path.with_name(path.name + ".takeover")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                if time.time() - os.stat(lock).st_mtime > _TAKEOVER_STALE_S:
                    lock.unlink(missing_ok=True)
            except OSError:
                pass
            return False
        try:
            now = Claims._stat(path)
            if now is not None and (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
                path.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)
            lock.unlink(missing_ok=True)
