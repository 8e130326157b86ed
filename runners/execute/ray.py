"""Runs on a Ray cluster: one Ray task per run, which starts the worker in a child process on its node and returns the
record to the driver (this process), which writes it where the plan said.

Without an address a local Ray instance starts with the command (listening on 127.0.0.1 only) and stops with it;
"auto" or HOST:PORT joins a running cluster, which is left running. Each run asks for one GPU where the cluster has
GPUs; on a cluster without, for CPUs: a local instance's cores divided among `workers` (default: all of them, one run
at a time), or on a joined cluster the cores of its smallest node (one run per node at a time), and the run's torch
and OpenMP threads are set to what it was given. `workers` caps the runs in flight; by default Ray's resources do.

How the data and the model reach the nodes, and why the object store: runners.execute.ray_node.

Retries are explicit: Ray itself retries nothing (`max_retries=0`). A run whose node (or Ray worker process) is lost
mid-run is submitted again, up to `retries` times, and its record states the attempt (`device.attempt`) and what was
lost before (`device.retried_after`); past that it is recorded `failed`, naming the node. Other runs are untouched.
A run killed by Ray's memory monitor is recorded `oom`. Ctrl-C cancels every task: the queued ones are dropped, the
running ones pass the signal to their run and are recorded `cancelled` by the driver, the finished ones are kept.
Every node runs the same checkout (`pip install -e ".[ray]"` of the same commit): the task imports `runners` there.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runners.core.errors import UserError
from runners.core.signals import STOP_SIGNALS, Stopped, signals_held
from runners.execute.claims import Claim
from runners.execute.executor import placement
from runners.execute.pool import Dispatcher, Running, cpu_cores
from runners.execute.ray_node import run_on_node
from runners.job.spec import Job
from runners.store.records import write_record
from runners.store.schema import Record, RecordError, Status

RETRIES = 1  # a run whose node is lost runs once more (on any node), then is recorded failed
# Model files in these formats are weights; only those the run loads (the model identity's) are shipped.
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".h5", ".msgpack", ".onnx", ".ot", ".pt", ".pth", ".gguf"}


class RayExecutor(Dispatcher):
    """One Ray task per run on the cluster at `address` (None: a local instance of this command's own)."""

    kind = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, quiet: bool = False,
                 name: Callable[[Job], str] | None = None, retries: int = RETRIES, cpus_per_run: float | None = None,
                 command: list[str] | None = None, grace_s: float | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError('--executor ray needs ray: pip install -e ".[ray]"') from None
        super().__init__(workers, quiet, name)
        self.address, self.retries, self.cpus_per_run = address, retries, cpus_per_run
        self.command = command  # None: the worker, as the node's Python starts it
        if grace_s is not None:
            self.grace_s = grace_s
        self._owner = False  # True: this executor called ray.init, and so calls ray.shutdown
        self._remote = None
        self._shipped: dict[Path, dict] = {}

    def __enter__(self):
        self.connect()
        return self

    def connect(self) -> None:
        import ray

        if self._remote is not None:
            return
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report home unless the user asked for one
            handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}
            try:
                if self.address is None:  # our own, on this machine alone: reachable from nowhere else
                    ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                             logging_level=logging.WARNING)
                else:
                    ray.init(address=self.address, logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as e:
                what = f"--ray-address {self.address}: cannot connect" if self.address else "cannot start Ray here"
                raise UserError(f"{what}: {_one_line(e)}") from None
            except BaseException:  # Ctrl-C while it starts: what started stops with this command
                ray.shutdown()
                raise
            finally:  # ray.init sets its own SIGTERM handler (sys.exit): the command's must stay
                for s, handler in handlers.items():
                    if handler is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(s, handler)
            self._owner = True
        total = ray.cluster_resources()
        if total.get("GPU", 0) >= 1:
            options, self.threads = {"num_gpus": 1}, None
        else:
            nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]]
            if not any(nodes):
                raise UserError("the Ray cluster has neither GPUs nor CPUs to run on")
            if self.cpus_per_run:
                cpus = self.cpus_per_run
            elif self.address is None:
                cpus = max(1, int(total.get("CPU", cpu_cores())) // (self.workers or 1))
            else:
                cpus = min(c for c in nodes if c > 0)
            options, self.threads = {"num_cpus": cpus}, max(1, int(cpus))
        self._ship_files = not (self._owner and self.address is None)  # our own local instance: paths will do
        self._remote = ray.remote(max_retries=0)(run_on_node).options(**options)

    def _start(self, job: Job, claim: Claim, slot: int) -> None:
        self.connect()
        self._submit(job, claim, slot, attempt=1, lost=None)

    def _submit(self, job: Job, claim: Claim, slot: int, attempt: int, lost: str | None) -> None:
        where = placement(self.kind, None, attempt=attempt, threads=self.threads,
                          **({"retried_after": lost} if lost else {}))
        run_job = job.with_(quiet=True, placement=where)  # bars from several nodes at once would garble
        shipped = self._ship(run_job) if self._ship_files else {}
        with signals_held():
            ref = self._remote.remote(run_job, shipped, self.threads, self.command, self.grace_s)
            self._running[ref] = Running(run_job, claim, slot, time.time(), "queued", begun=False,
                                         extra={"attempt": attempt, "job": job, "ref": ref})

    def _wait(self, timeout: float) -> list[tuple[Any, Any]]:
        import ray

        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        ended = []
        for ref in ready:
            item = _next(ref)
            if item is None:
                time.sleep(0.01)  # ready, but its message is still on its way
            elif isinstance(item, dict) and "started" in item:
                node = item["started"]
                self._running[ref].extra["node"] = node
                attempt = self._running[ref].extra["attempt"]
                self._begin(ref, f"on node {node['node_id'][:8]} ({node['node_ip']})"
                                 + (f", attempt {attempt}" if attempt > 1 else ""))
            else:
                ended.append((ref, item))
        return ended

    def _ended(self, run: Running, outcome: Any) -> Record | None:
        import ray.exceptions as rex

        path = Path(run.job.record_path)
        if isinstance(outcome, dict):  # the node's record: validated here too, and written by the driver
            try:
                return write_record(path, json.loads(outcome["record"]))
            except RecordError as e:  # the node runs another version of the code, say
                outcome = RuntimeError(f"the record it sent is not valid here: {e}")
        node = _node_name(run.extra.get("node"), outcome)
        attempt = run.extra["attempt"]
        if isinstance(outcome, rex.OutOfMemoryError):
            status, error = Status.OOM, f"killed by Ray's memory monitor on {node}"
        elif isinstance(outcome, rex.TaskCancelledError):
            status, error = Status.CANCELLED, "interrupted (its Ray task was cancelled)"
        elif _lost(outcome):
            if attempt <= self.retries:
                self.progress.say(f"{self.name(run.job)}: {node} was lost mid-run; running it again "
                                  f"(attempt {attempt + 1} of {1 + self.retries})")
                self._submit(run.extra["job"], run.claim, run.slot, attempt + 1,
                             f"attempt {attempt}: {node} lost ({type(outcome).__name__})")
                return None
            status, error = Status.FAILED, (f"{node} was lost mid-run ({type(outcome).__name__}), on attempt "
                                            f"{attempt} of {1 + self.retries}")
        else:
            status, error = Status.FAILED, f"its Ray task failed on {node}: {_one_line(outcome)}"
        return write_record(path, {**run.job.base_record(status, error), "timestamp": _now()})

    def _cancel(self, runs: list[Running], stop: Stopped) -> list[Record]:
        import ray

        by_ref = {run.extra["ref"]: run for run in runs}
        for ref in by_ref:
            ray.cancel(ref)  # queued: dropped; running: KeyboardInterrupt in the task, which stops its run
        outcomes: dict[Any, Any] = {}
        left = list(by_ref)
        deadline = time.monotonic() + self.grace_s + 5  # the run's grace, and Ray's messages to and fro
        try:
            while left and time.monotonic() < deadline:
                ready, _ = ray.wait(left, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
                for ref in ready:
                    item = _next(ref)
                    if item is None:  # ready, but its message is still on its way
                        time.sleep(0.05)
                        continue
                    if isinstance(item, dict) and "started" in item:  # it began just before the cancel
                        by_ref[ref].begun = True
                        by_ref[ref].extra["node"] = item["started"]
                        continue
                    outcomes[ref] = item
                    left.remove(ref)
        except KeyboardInterrupt:  # asked twice: no more waiting
            pass
        for ref in left:
            ray.cancel(ref, force=True)  # kills its Ray worker; the run, its child, dies with it
        records = []
        with signals_held():
            for ref, run in by_ref.items():
                item = outcomes.get(ref)
                if isinstance(item, dict) and "record" in item and json.loads(item["record"])["status"] == "ok":
                    records.append(write_record(Path(run.job.record_path), json.loads(item["record"])))
                elif run.begun:
                    killed = f"; killed after not stopping within {self.grace_s:g} s" if ref in left else ""
                    error = f"interrupted ({stop.cause}){killed}"
                    records.append(write_record(Path(run.job.record_path),
                                                {**run.job.base_record(Status.CANCELLED, error), "timestamp": _now()}))
        return records

    def _ship(self, job: Job) -> dict:
        """Object-store references to the job's files, put once per command (see the module's docstring)."""
        keep = set(job.model.weights_sha256)
        shipped = {"tokens": self._put(Path(job.tokens)),
                   "model": self._put(Path(job.model.path), keep_weights=keep)}
        if job.texts:
            shipped["texts"] = self._put(Path(job.texts))
        if any(p.endswith(".py") for p in job.plugins):
            shipped["plugins"] = [self._put(Path(p)) if p.endswith(".py") else p for p in job.plugins]
        return shipped

    def _put(self, path: Path, keep_weights: set[str] | None = None) -> dict:
        import ray

        if path not in self._shipped:
            if keep_weights is None:
                files = {path.name: path.read_bytes()}
            else:
                files = {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file() and (
                    f.name in keep_weights or f.suffix not in _WEIGHT_SUFFIXES)}
            digest = hashlib.sha256()
            for name, data in sorted(files.items()):
                digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            self._shipped[path] = {"digest": digest.hexdigest(), "name": path.name, "folder": keep_weights is not None,
                                   "ref": ray.put(files)}
        return self._shipped[path]

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self._shipped.clear()
        if self._owner:
            import ray

            ray.shutdown()  # a local instance stops with the command; a joined cluster is only left
            self._owner, self._remote = False, None


def _next(gen: Any) -> Any:
    """The task's next message ({"started": ...} or {"record": ...}), the exception that ended it, or None when none
    is ready yet. (`next(gen)` would wait without a bound: after a cancel, until the task has ended.)"""
    import ray

    try:
        ref = gen._next_sync(timeout_s=0)
    except StopIteration:
        return RuntimeError("the task ended without a record")
    if ref.is_nil():
        return None
    try:
        return ray.get(ref)
    except Exception as e:  # noqa: BLE001 (whatever ended the task is this run's outcome)
        return e


def _lost(e: BaseException) -> bool:
    import ray.exceptions as rex

    return isinstance(e, (rex.NodeDiedError, rex.WorkerCrashedError, rex.ObjectLostError, rex.LocalRayletDiedError,
                          rex.RaySystemError))


def _node_name(node: dict | None, e: BaseException) -> str:
    if node:
        return f"node {node['node_id'][:8]} ({node['node_ip']})"
    found = re.search(r"node ID: ([0-9a-f]+)", str(e))
    ip = re.search(r"Node IP: ([^,\s]+)", str(e))
    if found:
        return f"node {found.group(1)[:8]}" + (f" ({ip.group(1)})" if ip else "")
    return "its node (not known: it was lost before the run reported in)"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}"


def _now() -> str:
    from runners.store.context import now

    return now()
