"""What a run runs on and reads off it: the device and the precision it computes in, file hashes, parameter counts and
memory readings."""
from __future__ import annotations

import functools
import hashlib
import platform
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the functions that read a device: `--help` and `--list` load without it
    import torch
    from torch import nn

MiB = 1 << 20


def resolve_device(choice: str) -> torch.device:
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        from runners.core.errors import UserError
        raise UserError("--device cuda asked for, but torch sees no CUDA device (is this a CPU build of torch?)")
    return torch.device(choice)


def device_info(device: torch.device, bf16: bool = True) -> dict:
    """The device, and the precision a run computes in on it (`bf16`: the loop's bf16 speed-up is on)."""
    import torch

    p = precision(device, bf16)
    where = ({"type": "cuda", "name": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}
             if device.type == "cuda" else {"type": "cpu", "name": _cpu_name(), "threads": torch.get_num_threads()})
    return {**where, "compute_dtype": str(p.dtype).removeprefix("torch."), "bf16_autocast": p.autocast,
            "bf16_reason": p.reason}


# CPU features with bf16 arithmetic in hardware (cpuinfo's names, as torch.cpu.get_capabilities() reports them).
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Precision:
    """What the loop computes in: bf16 autocast (weights and optimizer state stay fp32) or plain fp32, and why."""

    autocast: bool
    reason: str

    @property
    def name(self) -> str:
        """The dtype's name, as records and ModelContext.compute_dtype hold it: bfloat16 or float32."""
        return "bfloat16" if self.autocast else "float32"

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return torch.bfloat16 if self.autocast else torch.float32


def precision(device: torch.device, bf16: bool = True) -> Precision:
    """bf16 autocast where the device computes bf16 in hardware, unless the bf16 speed-up is off (`--ablate bf16`).

    CUDA: where torch reports bf16 support (Ampere on). CPU: where the CPU has a bf16 instruction set
    (`cpu_native_bf16`); elsewhere bf16 is emulated by conversions and is no faster than fp32.
    """
    if not bf16:
        return Precision(False, "bf16 speed-up off (--ablate bf16)")
    if device.type == "cuda":
        import torch

        ok = torch.cuda.is_bf16_supported()
        return Precision(ok, "cuda device supports bf16" if ok else "cuda device without bf16")
    if device.type == "cpu":
        return Precision(*cpu_native_bf16())
    return Precision(False, f"no bf16 autocast on {device.type}")


@functools.cache
def cpu_native_bf16() -> tuple[bool, str]:
    """(whether this CPU has native bf16, the reason), from the CPU's feature flags.

    A flag, not torch's `mkldnn._is_mkldnn_bf16_supported()` (True on any AVX-512 CPU, where oneDNN emulates bf16
    by conversions; the 2-core EPYC without AVX512-BF16 this lab also runs on is one) and not a timing probe (the
    decision would then depend on the load at start-up and differ between runs on one machine; a flag makes it a
    property of the machine, so the same machine records the same precision). Measured on an AMD EPYC with
    avx512_bf16 (runners.bench's matmul peaks): bf16 2.5x fp32. ARM's bf16 extension is not used: unmeasured here.
    """
    flags = _cpu_flags()
    found = [f for f in NATIVE_BF16 if f in flags]
    if found:
        return True, f"cpu has {found[0]}"
    return False, f"cpu has no native bf16 ({' or '.join(NATIVE_BF16)})"


def _cpu_flags() -> set[str]:
    """The CPU's feature names: torch's report (cpuinfo, torch >= 2.8), else Linux's /proc/cpuinfo flags."""
    import torch

    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        try:
            return {k for k, v in get().items() if v is True}
        except Exception:  # an unknown platform: fall through to /proc
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


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
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """Peak memory of this process's run: CUDA allocator peaks, or the process's peak resident set on the CPU."""
    if device.type == "cuda":
        import torch

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


def measurable(device) -> list[str]:
    """The speed-ups that change how the loop runs on `device`: on a CPU, not the CUDA-only ones, nor bf16 where
    the CPU has no native bf16 (the loop runs fp32 there either way)."""
    from runners.settings.speedups import CUDA_ONLY, SPEEDUPS

    if device.type == "cuda":
        return list(SPEEDUPS)
    return [n for n in SPEEDUPS if n not in CUDA_ONLY and (n != "bf16" or precision(device).autocast)]
