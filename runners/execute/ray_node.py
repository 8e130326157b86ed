"""What a Ray task runs on its node (runners.execute.ray): the worker in a child process that dies with the task, the
job's files fetched once per node from the object store, and the record sent back to the driver.

How the data and the model reach the nodes: nodes need no shared filesystem. On a joined cluster the driver reads
the tokenized data file, the model folder's files (config, tokenizer, the weights the run loads, none of the other
formats) and any plugin file once per command, puts each in Ray's object store (`ray.put`), and hands every task
the references. A node fetches each object the first time one of its runs needs it and keeps the files in a cache
named by their content hash (`$TMPDIR/peft-lab-ray-cache/<sha256>/` on the node), so a node fetches the model once,
not once per run, and a later command with the same model and data fetches nothing. Why the object store and not
paths: paths need every node to mount the same folder at the same place, which many clusters (cloud nodes, a lab's
workstations) do not have, while the object store is there on every Ray cluster, moves data node to node without
the driver in the way, and frees it when the command ends. The cost: one copy per node of the model (GPT-2 small is
0.5 GB; the XL model 6 GB, so the nodes' object stores and temp disks must hold it). A local instance is this
machine alone: there the runs read the files by path and nothing is copied.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runners.execute.executor import child_env, settle, worker_command, write_job
from runners.job.spec import Job

# On the node. The run's process starts through this: it dies with the Ray worker that started it (the node lost, a
# forced cancel), its stop signals are set to their defaults (a Ray worker ignores some, and a child inherits that)
# and held until the worker's handlers are set, as every executor starts a run.
_LAUNCH = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        os._exit(1)  # its parent died before the line above
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_on_node(job: Job, shipped: dict, threads: int | None, command: list[str] | None, grace_s: float):
    """A Ray task (a generator: its first message says where the run started, its second carries the record)."""
    import ray

    ctx = ray.get_runtime_context()
    gpus = ray.get_gpu_ids()
    node = {"host": socket.gethostname(), "node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            **({"gpu": ",".join(map(str, gpus))} if gpus else {})}
    workdir = Path(tempfile.mkdtemp(prefix="peft-lab-run-"))
    proc = None
    try:
        job = job.with_(**_materialize(job, shipped), record_path=str(workdir / f"{job.run_id}.json"),
                        placement={**job.placement, **node})
        env = child_env()
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PEFT_LAB_THREADS=str(threads))
        job_path = write_job(job)
        started = time.time()
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCH, str(os.getpid()),
                                 *(command or worker_command()), str(job_path)], env=env)
        yield {"started": {**node, "pid": proc.pid}}
        try:
            code = _wait_awake(proc)
        except BaseException:  # ray.cancel (KeyboardInterrupt), the node shutting down (SystemExit)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            raise
        finally:
            job_path.unlink(missing_ok=True)
        yield {"record": settle(job, started, code, None).to_json()}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_awake(proc: subprocess.Popen) -> int:
    """`proc.wait()`, awake: Ray's cancel raises KeyboardInterrupt in the task only when Python code runs, which a
    plain wait (one blocking system call) would not until the run had ended. (Popen polls every few ms inside.)"""
    while True:
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue


def _materialize(job: Job, shipped: dict) -> dict:
    """The job's fields that name files, pointed at this node's copies of the shipped ones."""
    if not shipped:
        return {}
    cache = Path(tempfile.gettempdir()) / "peft-lab-ray-cache"
    fields = {"tokens": str(_fetch(shipped["tokens"], cache)),
              "model": {**job.model.model_dump(), "path": str(_fetch(shipped["model"], cache))}}
    if "texts" in shipped:
        fields["texts"] = str(_fetch(shipped["texts"], cache))
    if "plugins" in shipped:
        fields["plugins"] = [str(_fetch(p, cache)) if isinstance(p, dict) else p for p in shipped["plugins"]]
    return fields


def _fetch(shipment: dict, cache: Path) -> Path:
    """This node's copy of a shipped file or folder: fetched from the object store the first time, then cached."""
    import ray

    home = cache / shipment["digest"]
    if not home.is_dir():
        files = ray.get(shipment["ref"])
        tmp = cache / f".{shipment['digest']}.{secrets.token_hex(4)}.tmp"
        folder = tmp / shipment["name"] if shipment["folder"] else tmp
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        try:
            os.rename(tmp, home)  # atomic: another run on this node may be doing the same
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return home / shipment["name"]
