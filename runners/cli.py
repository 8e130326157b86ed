"""The command line's run options, derived from RunConfig's fields: name, type, default and help in one place."""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from runners.config import RunConfig
from runners.sources import Source


def options() -> list[dataclasses.Field]:
    """RunConfig's fields that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(RunConfig) if f.metadata["flag"]]


def flag(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """One `--option` per RunConfig setting. A tuple's text stays text here: its field's `parse` reads it in
    `run_settings`, where a mistake is a one-line UserError rather than argparse's usage dump."""
    hints = typing.get_type_hints(RunConfig)
    for f in options():
        meta, typ = f.metadata, _scalar(hints[f.name])
        default = None if meta["resolved"] else f.default
        if typ is bool:
            if f.default is not False:
                raise TypeError(f"{f.name}: a flag that is on by default would need a --no- option")
            parser.add_argument(flag(f), action="store_true", help=meta["help"])
            continue
        if typ is tuple and not (meta["parse"] or meta["resolved"]):
            raise TypeError(f"{f.name}: a tuple setting needs `parse` to read its option's text")
        parser.add_argument(flag(f), type=str if typ is tuple else typ, default=default, choices=meta["choices"],
                            help=meta["help"] + _shown(default))


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    """`--plugin MODULE|FILE.py`, repeatable: imported as it is parsed, so that its methods are registered before
    `--list` or `--methods` reads the registry. The parsed value is the list of plugins as a run's process imports
    them (a file by its absolute path); one that does not import ends the command with one line, exit 2."""
    parser.add_argument("--plugin", action=_Plugin, default=[], metavar="MODULE|FILE.py",
                        help="import methods from outside the repository: a module path or a .py file (repeatable)")


class _Plugin(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None) -> None:
        from methods import PluginError, load_plugin

        try:
            loaded = load_plugin(value)
        except PluginError as e:
            parser.exit(2, f"error: {e}\n")  # compare's one-line mistakes, not argparse's usage dump
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), loaded])


def run_settings(args: argparse.Namespace, source: Source) -> dict:
    """RunConfig's keyword arguments (all but method and seed) from parsed options: the resolved ones from the
    data source, the others as typed, tuples read by their field's `parse`."""
    # a hub dataset's split names only where they are not the default, so that run ids hold as for local data
    named = source.splits if source.hub_id and source.splits != ("train", "test") else None
    resolved = {"dataset": source.name, "splits": named,
                "max_length": args.max_length or source.default_max_length}  # fitted to the model's positions later
    settings = {}
    for f in options():
        value = resolved[f.name] if f.metadata["resolved"] else getattr(args, f.name)
        if isinstance(value, str) and f.metadata["parse"]:
            value = f.metadata["parse"](value)
        settings[f.name] = value
    return settings


def value_flags() -> set[str]:
    """The options that take a value (all but the on/off ones)."""
    hints = typing.get_type_hints(RunConfig)
    return {flag(f) for f in options() if _scalar(hints[f.name]) is not bool}


def _scalar(hint: object) -> type:
    """int for `int | None`, tuple for `tuple[float, ...]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _scalar(args[0])
    return typing.get_origin(hint) or hint


def _shown(default: object) -> str:
    if default is None or default == ():
        return ""
    return f" (default {','.join(f'{x:g}' for x in default) if isinstance(default, tuple) else default})"
