"""Fine-tuning methods. Each lives in its own module and registers itself under its CLI name (methods.registry finds
them by a scan of this folder, on first use)."""
from methods.base import HParams, Method, ModelContext, Progress, default_optimizer, freeze_all_but, hp
from methods.registry import METHODS, PluginError, Registry, SpecError, get, load_plugin, register, registered
from methods.specs import MethodSpec, parse_spec, parse_specs

__all__ = [
    "METHODS", "HParams", "Method", "MethodSpec", "ModelContext", "PluginError", "Progress", "Registry", "SpecError",
    "default_optimizer", "freeze_all_but", "get", "hp", "load_plugin", "parse_spec", "parse_specs", "register",
    "registered",
]
