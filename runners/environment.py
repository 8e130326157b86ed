"""Identity of what a run used: package versions, git commit, device, file hashes, and memory and size readings."""
from __future__ import annotations

import hashlib
import platform
import resource
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

PACKAGES = ("torch", "transformers", "datasets", "accelerate", "numpy", "pandas", "scikit-learn")  # the runner's
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def versions() -> dict[str, str | None]:
    """Python's version and each package's: the runner's own, then those the registered methods name (`packages`)."""
    from methods import registered

    found = {"python": platform.python_version()}
    for name in dict.fromkeys([*PACKAGES, *sorted({p for cls in registered().values() for p in cls.packages})]):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state() -> dict:
    """The commit the code ran from and whether its code had uncommitted changes (None outside git).

    Changes under results/ do not count: records and tables are outputs, not code.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changes)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        from runners.errors import UserError
        raise UserError("--device cuda asked for, but torch sees no CUDA device (is this a CPU build of torch?)")
    return torch.device(choice)


def device_info(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}
    return {"type": "cpu", "name": _cpu_name(), "threads": torch.get_num_threads()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_parameters(model: nn.Module,
                     values_per_element: Callable[[torch.Tensor], int] = lambda p: 1) -> tuple[int, int]:
    """(trainable, total) parameters. `values_per_element`: the method's `stored_values_per_element`, for weights
    stored packed (two 4-bit values to a byte, say)."""
    trainable = total = 0
    for p in model.parameters():  # parameters() already skips shared (tied) tensors
        n = p.numel() * values_per_element(p)
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """Peak memory of this process's run: CUDA allocator peaks, or the process's peak resident set on the CPU."""
    if device.type == "cuda":
        return {"kind": "cuda_max_allocated", "peak_mib": torch.cuda.max_memory_allocated(device) / MiB,
                "cuda_max_reserved_mib": torch.cuda.max_memory_reserved(device) / MiB}
    return {"kind": "cpu_peak_rss", "peak_mib": peak_rss_bytes() / MiB}


def peak_rss_bytes() -> int:
    """This process's own peak resident set. Linux's `VmHWM` is the process's alone; `ru_maxrss` is kept across
    fork and exec, so a run started by a large parent would report the parent's peak (measured: a head run recorded
    exactly its parent's 1,563.7 MiB). `ru_maxrss` only where /proc is missing (macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss if sys.platform == "darwin" else rss * 1024


def now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
