"""The method registry and the `NAME[:key=value...]` spec parser used by the CLI."""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import re
import sys
import typing
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LIST_SEP = "+"  # separates items of a list value: `lora:targets=c_attn+c_fc` (commas separate methods)
ENTRY_POINTS = "peft_lab.methods"  # the entry-point group an installed package registers its methods under
_entry_points_loaded = False


class SpecError(ValueError):
    """A method spec the user typed is wrong; the message is one line meant for them."""


class PluginError(SpecError):
    """A plugin (`--plugin` or an entry point) could not be imported; the message is one line meant for the user."""


def register(name: str):
    """Class decorator: `@register("lora")` makes the method available as `--methods lora`."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not _NAME.match(name):
            raise ValueError(f"method name {name!r} must be lowercase letters, digits and _")
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register({name!r}) must decorate a Method subclass")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered() -> dict[str, type[Method]]:
    """Every registered method, by name, installed plugins' included."""
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[Method]:
    _load_entry_points()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"unknown method {name!r}.{hint} Registered: {', '.join(sorted(_REGISTRY))} "
                        f"(a method from elsewhere: --plugin MODULE or FILE.py)")
    return _REGISTRY[name]


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


def _load_entry_points() -> None:
    """Import, once, every module installed packages list in the entry-point group `peft_lab.methods`."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True  # first: a plugin that reads the registry while it loads must not load it again
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        try:
            ep.load()
        except Exception as e:
            dist = getattr(ep, "dist", None)  # the distribution that declared it, where importlib knows it
            raise PluginError(f"cannot import plugin {ep.name!r} ({ep.value}, entry point of "
                              f"{dist.name if dist else 'an installed package'}): {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


@dataclass(frozen=True)
class MethodSpec:
    """A parsed `NAME[:key=value...]`: the label shown in tables, and the method built from it."""

    label: str
    method: Method


def parse_spec(text: str) -> MethodSpec:
    label = text.strip()
    name, *pairs = label.split(":")
    if not name:
        raise SpecError(f"empty method name in spec {text!r}")
    cls = get(name)
    return MethodSpec(label=label, method=cls(parse_params(label, name, cls.Params, pairs)))


def parse_params(label: str, name: str, params_cls: type, pairs: list[str]) -> Any:
    """`params_cls` (a hyperparameter dataclass) from `key=value` texts, each typed from its field; every mistake a
    one-line SpecError that names the spec. Shared by the method and the baseline registries."""
    fields = [f.name for f in dataclasses.fields(params_cls)]
    types = typing.get_type_hints(params_cls)
    values: dict[str, object] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            raise SpecError(f"{label}: expected key=value, got {pair!r}")
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"{label}: unknown parameter {key!r} for {name}.{hint} Allowed: {', '.join(fields)}")
        if key in values:
            raise SpecError(f"{label}: {key!r} given twice")
        values[key] = _convert(label, key, raw, types[key])
    try:
        return params_cls(**values)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{label}: {e}") from None


def parse_specs(text: str) -> list[MethodSpec]:
    """Parse a comma-separated `--methods` value; labels must be unique."""
    specs = [parse_spec(part) for part in text.split(",") if part.strip()]
    if not specs:
        raise SpecError("no method given; try --list to see the registered ones")
    labels = [s.label for s in specs]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise SpecError(f"method spec given more than once: {', '.join(dupes)}")
    return specs


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _convert(label: str, key: str, raw: str, typ: object) -> object:
    try:
        return _coerce(raw, typ)
    except ValueError:
        shown = getattr(typ, "__name__", str(typ))
        raise SpecError(f"{label}: {key}={raw!r} is not a valid {shown}") from None


def _coerce(raw: str, typ: object) -> object:
    """Turn the text after `=` into the field's type: bool, int, float, str, tuple[X, ...], or X | None."""
    if typ is bool:
        if raw.lower() not in _TRUE | _FALSE:
            raise ValueError(raw)
        return raw.lower() in _TRUE
    if typ in (int, float, str):
        return typ(raw)
    args = typing.get_args(typ)
    if typing.get_origin(typ) is tuple:
        return tuple(_coerce(item, args[0]) for item in raw.split(LIST_SEP) if item)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return None if raw.lower() == "none" else _coerce(raw, inner)
    raise TypeError(f"unsupported hyperparameter type {typ}")
