"""The executor a command's flags ask for: `--executor local|ray`, `--workers N`, `--ray-address`."""
from __future__ import annotations

import os
from collections.abc import Callable

from runners.core.errors import UserError
from runners.execute.serial import SubprocessExecutor

EXECUTORS = ("local", "ray")


def make_executor(kind: str = "local", workers: int | None = None, ray_address: str | None = None,
                  quiet: bool = False, device: str | None = None, name: Callable[[dict], str] | None = None,
                  serial: type | None = None):
    """The executor a command's flags ask for: `local` with one worker runs each job in its own process, in order
    (`SubprocessExecutor`); with more, `runners.execute.pool.LocalPool` runs that many at once; `ray` runs them on a Ray
    cluster (`runners.execute.ray.RayExecutor`; `ray_address` None starts a local instance, "auto" or HOST:PORT
    joins one). `workers` defaults to one per visible GPU on CUDA, 1 on the CPU; `device` is the runs' device type
    ("cpu", "cuda"; None: CUDA when there is one). `quiet`: no overall progress bar. `name`: a job's name in lines.
    `serial`: the class for one local worker (default SubprocessExecutor; tests swap in InProcessExecutor)."""
    if kind not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UserError(f"--workers must be an integer >= 1, got {workers!r}")
    if kind == "ray":
        from runners.execute.ray import RayExecutor  # refuses, in one line, when ray is not installed

        return RayExecutor(address=ray_address, workers=workers, quiet=quiet, name=name)
    if ray_address is not None:
        raise UserError("--ray-address needs --executor ray")
    gpus = visible_gpus(device)
    workers = workers or max(len(gpus), 1)
    if workers == 1:
        return (serial or SubprocessExecutor)(name=name)
    from runners.execute.pool import LocalPool

    return LocalPool(workers, gpus=gpus, quiet=quiet, name=name)


def visible_gpus(device: str | None = None) -> list[str]:
    """The CUDA devices a run may be given, as CUDA_VISIBLE_DEVICES names them in this process; none on the CPU."""
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return []
    names = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    count = torch.cuda.device_count()
    return names[:count] if names else [str(i) for i in range(count)]
