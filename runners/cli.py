"""The command line: the run options, derived from RunConfig's fields (name, type, default and help in one place),
and the checks of what a user typed, each a one-line UserError before anything loads."""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from methods import registered
from runners.core.errors import UserError
from runners.job import stages
from runners.settings.config import RunConfig

if TYPE_CHECKING:
    from runners.data.sources import Source
    from runners.planning.plan import Entry


def list_methods(markdown: bool = False, model: str | None = None) -> str:
    """Every registered method with its summary and default hyperparameters, as text or a markdown table; with
    `model` (`--list --model X`), whether each applies to X's architecture, the modules it would adapt there, or why
    it is refused (from X's config alone: nothing loads)."""
    arch = _architecture(model) if model else None
    rows = []
    for name, cls in registered().items():
        method = cls()
        defaults = " ".join(f"{k}={_spec_value(v)}" for k, v in method.describe().items())
        rows.append((name, cls.summary, defaults, _on(method, arch) if arch else None))
    if markdown:
        from tabulate import tabulate

        on = [f"on {model}"] if arch else []
        return tabulate([(f"`{n}`", s, f"`{d}`", *([o] if arch else [])) for n, s, d, o in rows],
                        headers=["method", "what trains", "defaults", *on], tablefmt="github")
    from baselines import registered as baselines

    refs = [(name, cls.summary, " ".join(f"{k}={v}" for k, v in cls().describe().items()), None)
            for name, cls in baselines().items()]
    w = max(len(n) for n, *_ in rows + refs) + 1
    text = "\n".join(f"{n:<{w}} {s}\n{'':<{w}} defaults: {d}" + (f"\n{'':<{w}} on {model}: {o}" if o else "")
                     for n, s, d, o in rows)
    if arch:
        refused = sum(o.startswith("refused") for *_, o in rows)
        a = arch.summary()
        text = (f"On {model}: a {a['model_type']} {a['kind']} ({a['blocks']}; scores {a['scores']} with "
                f"{'+'.join(a['head'])}): {len(rows) - refused} methods apply, {refused} refused\n\n" + text)
    return text + "\n\nClassical baselines (--baselines), trained to convergence as reference rows:\n" + "\n".join(
        f"{n:<{w}} {s}\n{'':<{w}} defaults: {d}" for n, s, d, _ in refs)


def _architecture(model: str):
    """The architecture of `--model` from its config alone (a local folder, or the hub's config.json)."""
    from methods.architecture import ArchitectureError, describe_config

    if not Path(model).expanduser().is_dir() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise UserError(f"--model {model}: no such folder")
    try:
        return describe_config(model)
    except (OSError, ValueError, KeyError, ArchitectureError) as e:
        raise UserError(f"--model {model}: cannot read its architecture ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:200]})") from None


def _on(method, arch) -> str:
    """`adapts attn.c_attn, ...`, or `refused: why`, for a method (with its defaults) on `arch`."""
    if why := method.applies_to(arch):
        return f"refused: {why}"
    method.arch = arch
    modules = method.modules()
    return "; ".join(f"{what} {', '.join(names)}" for what, names in modules.items()) or "trains every weight"


def _spec_value(value: object) -> str:
    """A hyperparameter as a spec takes it: a list joined by '+', a float short (1e-05, 0.03)."""
    if isinstance(value, (tuple, list)):
        return "+".join(_spec_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    """int for `int | None`, tuple for `tuple[float, ...]`, str for `Literal["a", "b"]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _scalar(args[0])
    if typing.get_origin(hint) is typing.Literal:  # a choice among texts: argparse checks it against `choices`
        return type(args[0])
    return typing.get_origin(hint) or hint


def _shown(default: object) -> str:
    if default is None or default == ():
        return ""
    return f" (default {','.join(f'{x:g}' for x in default) if isinstance(default, tuple) else default})"


def fit_max_length(asked: int | None, default: int, n_positions: int | None) -> int:
    if asked is None:
        return min(default, n_positions or default)
    if n_positions and asked > n_positions:
        raise UserError(f"--max-length {asked} exceeds the model's {n_positions} positions")
    return asked


def parse_workers(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--workers must be an integer >= 1, got {text!r}") from None


def check_tuning(settings: dict, entries: list[Entry], seeds: list[int]) -> None:
    """The learning-rate search's options, checked together before anything loads."""
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    if settings["tune_lr"] is None:
        given = [f"--{name.replace('_', '-')}" for name in ("search_seeds", "select_on", "lr_range")
                 if settings[name] != defaults[name]]
        if given:
            raise UserError(f"{', '.join(given)} set(s) how --tune-lr searches; without --tune-lr nothing is searched")
        return
    if settings["lr"] is not None:
        raise UserError("--lr fixes every method's learning rate and --tune-lr searches it: give one of them")
    tuned = [e.label for e in entries if e.stages == stages.DEFAULT]
    if not tuned:
        raise UserError("--tune-lr searches the fine-tuning methods' rates, and --methods names none")
    fixed = [label for label in tuned if any(p.partition("=")[0] == "lr" for p in label.split(":")[1:])]
    if fixed:
        raise UserError(f"{', '.join(fixed)}: a spec's :lr= fixes the rate --tune-lr searches; drop it, or give "
                        f":lr_range=LO+HI to set the range searched")
    shared = sorted(set(seeds) & set(settings["search_seeds"]))
    if shared:
        raise UserError(f"--search-seeds and --seeds share {', '.join(map(str, shared))}: the search's seeds must "
                        f"not be the reported ones (a rate chosen on a seed would flatter that seed's test numbers)")


def parse_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise UserError(f"{flag} must be integers >= 0, got {text!r}")
    if not values:
        raise UserError(f"{flag} is empty")
    return list(dict.fromkeys(values))


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UserError(f"cannot write results to {folder}: {e.strerror}") from None


def dash_values(argv: list[str], flags: set[str]) -> list[str]:
    """`--budget -5s` as `--budget=-5s` for each option in `flags`: argparse takes a value that starts with '-' for
    an option and dies in a usage dump, where the budget's own one-line error says what is wrong."""
    out = []
    for token in argv:
        if out and out[-1] in flags and token[:1] == "-" and token[1:2].isdigit():
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def warn_if_sigint_ignored() -> None:
    """Say so where this process ignores SIGINT: one started in the background (`cmd &`) by a non-interactive shell
    inherits SIGINT ignored, and then Ctrl-C and `kill -INT` do nothing, silently. SIGTERM still stops it cleanly."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        print(f"warning: SIGINT is ignored in this process (started in the background by a non-interactive shell?): "
              f"Ctrl-C and kill -INT do nothing; stop it with SIGTERM: kill {os.getpid()}", file=sys.stderr)


def parse_entries(methods: str | None, baselines: str | None) -> list[Entry]:
    """The comparison's rows: the fine-tuning method specs, then the classical baselines asked for, each with the
    worker stages it declares."""
    from baselines import parse_spec as parse_baseline
    from methods import SpecError, parse_specs
    from runners.planning.plan import Entry

    entries = [Entry(spec.label, stages.DEFAULT) for spec in parse_specs(methods or "")] if methods or \
        not baselines else []
    for text in filter(None, (t.strip() for t in (baselines or "").split(","))):
        spec = parse_baseline(text)
        entries.append(Entry(spec.label, spec.baseline.stages))
    labels = [e.label for e in entries]
    if len(set(labels)) < len(labels):
        raise SpecError(f"spec given more than once: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
    return entries
