"""The `NAME[:key=value...]` spec parser the CLI reads methods (and baselines) with: typed from each field of the
hyperparameter dataclass, every mistake a one-line SpecError that names the spec."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from methods.registry import SpecError, get

if TYPE_CHECKING:
    from methods.base import Method

LIST_SEP = "+"  # separates items of a list value: `lora:targets=c_attn+c_fc` (commas separate methods)


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
