"""The method registry and the `NAME[:key=value...]` spec parser used by the CLI."""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass

from methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LIST_SEP = "+"  # separates items of a list value: `lora:targets=c_attn+c_fc` (commas separate methods)


class SpecError(ValueError):
    """A method spec the user typed is wrong; the message is one line meant for them."""


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
    """Every registered method, by name."""
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[Method]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"unknown method {name!r}.{hint} Registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


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
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    types = typing.get_type_hints(cls.Params)
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
        params = cls.Params(**values)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{label}: {e}") from None
    return MethodSpec(label=label, method=cls(params))


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
