"""Fine-tuning methods. Each lives in its own module and registers itself under its CLI name on import."""
from methods import (  # noqa: F401  (explicit imports register the methods)
    adalora,
    bitfit,
    dora,
    fourierft,
    full,
    head,
    ia3,
    lastk,
    lntuning,
    lora,
    loraplus,
    prefix,
    prompt,
    ptuning,
    qlora,
    vera,
)
from methods.base import HParams, Method, ModelContext, Progress, hp
from methods.registry import MethodSpec, SpecError, get, parse_spec, parse_specs, register, registered

__all__ = [
    "HParams", "Method", "MethodSpec", "ModelContext", "Progress", "SpecError",
    "get", "hp", "parse_spec", "parse_specs", "register", "registered",
]
