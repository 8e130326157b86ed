"""Fine-tuning methods. Each lives in its own module and registers itself under its CLI name on import."""
import importlib
import pkgutil

from methods.base import HParams, Method, ModelContext, Progress, default_optimizer, freeze_all_but, hp
from methods.registry import (
    MethodSpec,
    PluginError,
    SpecError,
    get,
    load_plugin,
    parse_spec,
    parse_specs,
    register,
    registered,
)

# Every module here is imported, so that adding a method is adding its file (STYLE.md's principle 1 asked for a
# hand-kept import list, which made a new method touch a second file and fail silently when it was forgotten). A
# module that fails to import fails `import methods` loudly; `--list`, the README table and the contract test
# show what registered. Modules named `_*` are left out (scratch files, a `__main__`, and a torch class a method
# imports when it runs, such as `_cached_features`): importing the registry imports no torch, so that `--help` and
# `--list` answer at once (tests/test_startup.py).
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "HParams", "Method", "MethodSpec", "ModelContext", "PluginError", "Progress", "SpecError",
    "default_optimizer", "freeze_all_but", "get", "hp", "load_plugin", "parse_spec", "parse_specs", "register",
    "registered",
]
