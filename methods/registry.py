"""One registry type for everything the lab looks up by name: fine-tuning methods, classical baselines and the worker's
stages. Each is registered under its name by a decorator that validates the name and refuses a duplicate, and each
registry finds its entries by one rule: a scan of its package's folder (every module not named `_*`), on first use,
plus the entry points of installed packages where it names a group; `load_plugin` imports one more module or file.

Why a folder scan and not a hand-kept import list (STYLE.md's principle 1 asked for one): adding a method is adding
its file, and a forgotten line in a list failed silently. A module that fails to import fails the lookup loudly;
`--list`, the README table and the contract test show what registered. Modules named `_*` are left out (scratch
files, a `__main__`, and helpers a method imports when it runs, such as `_cached_features`): nothing the registry
imports may import torch, so that `--help` and `--list` answer at once (tests/test_startup.py).
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Generic, TypeVar

from methods.base import Method

T = TypeVar("T")
NAME = r"^[a-z][a-z0-9_]*$"  # lowercase letters, digits and _: the CLI token


class SpecError(ValueError):
    """A spec the user typed is wrong (an unknown name, a bad key); the message is one line meant for them."""


class PluginError(SpecError):
    """A plugin (`--plugin` or an entry point) could not be imported; the message is one line meant for the user."""


class Registry(Generic[T]):
    """Names → registered classes (or functions) of one kind, found in `package`'s folder and `entry_points`."""

    def __init__(self, kind: str, package: str, *, base: type | None = None, pattern: str = NAME,
                 rule: str = "lowercase letters, digits and _", entry_points: str | None = None, hint: str = ""):
        self.kind, self.package, self.base, self.entry_points, self.hint = kind, package, base, entry_points, hint
        self.pattern, self.rule = re.compile(pattern), rule
        self.entries: dict[str, T] = {}  # as registered so far (lookups discover first; tests may set one)
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@METHODS.register("lora")` makes the class available as `--methods lora` (a class gets its
        `name` attribute set to it)."""

        def decorate(obj: T) -> T:
            self.discover()  # a plugin registering before any lookup still meets the package's own names
            if not self.pattern.match(name):
                raise ValueError(f"{self.kind} name {name!r} must be {self.rule}")
            if name in self.entries:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self.entries[name].__qualname__}")
            if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
                raise TypeError(f"@register({name!r}) must decorate a {self.base.__name__} subclass")
            if not callable(obj):
                raise TypeError(f"@register({name!r}) must decorate a class or a function")
            if isinstance(obj, type):
                obj.name = name
            self.entries[name] = obj
            return obj

        return decorate

    def registered(self) -> dict[str, T]:
        """Every entry, by name, in name order (the package's own and installed plugins')."""
        self.discover()
        return dict(sorted(self.entries.items()))

    def get(self, name: str) -> T:
        """The entry `name`, or a one-line SpecError naming the closest one and every registered name."""
        self.discover()
        if name not in self.entries:
            close = difflib.get_close_matches(name, self.entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self.entries))}"
                            + (f" ({self.hint})" if self.hint else ""))
        return self.entries[name]

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.registered())

    def discover(self) -> None:
        """Import, once, every module of the package's folder not named `_*`, then the entry points' modules."""
        if self._discovered:
            return
        self._discovered = True  # first: a module that reads the registry while it loads must not load it again
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")
        for ep in metadata.entry_points(group=self.entry_points) if self.entry_points else ():
            try:
                ep.load()
            except Exception as e:
                dist = getattr(ep, "dist", None)  # the distribution that declared it, where importlib knows it
                raise PluginError(f"cannot import plugin {ep.name!r} ({ep.value}, entry point of "
                                  f"{dist.name if dist else 'an installed package'}): {_one_line(e)}") from None


def load_plugin(plugin: str) -> str:
    """Import a module that registers methods: a module path (`mylab.methods`) or a `.py` file. Returns how a run's
    own process imports it again: the module path, or the file's absolute path. Importing twice is a no-op."""
    try:
        if not plugin.endswith(".py"):
            importlib.import_module(plugin)
            return plugin
        path = Path(plugin).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"plugin {plugin!r}: no such file")
        # A name of its own, so that a file called like a module already loaded (`lora.py`, `json.py`) does not
        # replace it; and in sys.modules, where dataclasses and typing look up the module of a class they read.
        stem, digest = re.sub(r"\W", "_", path.stem), hashlib.sha1(str(path).encode()).hexdigest()[:8]
        name = f"peft_lab_plugin_{stem}_{digest}"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return str(path)
    except PluginError:
        raise
    except Exception as e:  # whatever the plugin's code raises, the user gets one line that names the plugin
        raise PluginError(f"cannot import plugin {plugin!r}: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


ENTRY_POINTS = "peft_lab.methods"  # the entry-point group an installed package registers its methods under
METHODS: Registry[type[Method]] = Registry("method", "methods", base=Method, entry_points=ENTRY_POINTS,
                                           hint="a method from elsewhere: --plugin MODULE or FILE.py")
register, registered, get = METHODS.register, METHODS.registered, METHODS.get
