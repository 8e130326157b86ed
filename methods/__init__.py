"""Fine-tuning methods. Each lives in its own module and registers itself under its CLI name (methods.registry finds
them by a scan of this folder, on first use)."""
import logging

from methods.base import HParams, Method, Progress, default_optimizer, freeze_all_but, hp
from methods.context import ModelContext
from methods.registry import METHODS, PluginError, Registry, SpecError, get, load_plugin, register, registered
from methods.specs import MethodSpec, parse_spec, parse_specs

__all__ = [
    "METHODS", "HParams", "Method", "MethodSpec", "ModelContext", "PluginError", "Progress", "Registry", "SpecError",
    "default_optimizer", "freeze_all_but", "get", "hp", "load_plugin", "parse_spec", "parse_specs", "register",
    "registered",
]

# bitsandbytes logs this on import (peft imports it, whatever the method) on CPUs with AVX512-BF16 when the optional
# `kernels` package is absent: the fused kernel it names serves only the packed inference layout, which QLoRA
# switches off (methods/qlora.py), so there is nothing for a user to act on. Installed when the method library is
# imported, before anything imports bitsandbytes, on the one logger that emits it; its other messages pass.
_KERNELS_HINT = "Failed to load CPU gemm_4bit_forward from kernels-community"
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(lambda rec: not str(rec.msg).startswith(_KERNELS_HINT))
