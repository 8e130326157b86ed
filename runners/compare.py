"""`python -m runners.compare`: train every method spec x seed, each in its own process, then write the tables."""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

from methods import SpecError, parse_specs, registered
from runners import environment as env
from runners import estimate, stages
from runners.batches import default_cache_dir, load_tokenized, tokenize_cached
from runners.budget import Budget
from runners.cli import add_plugin_option, add_run_options, run_settings, value_flags
from runners.config import RunConfig
from runners.data import load_splits, save_texts
from runners.errors import UserError
from runners.executor import ExitCode, Stopped, SubprocessExecutor, stop_on_signals
from runners.models import load_tokenizer, resolve_model
from runners.plan import Entry, common_job, make_plan
from runners.records import DEFAULT_RESULTS, runs_dir
from runners.sources import resolve_source
from runners.tables import write_tables

# Where the runs execute: each in its own process, in order. The one seam to swap (tests run them in-process).
Executor = SubprocessExecutor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.compare", description=__doc__)
    p.add_argument("--methods", help="comma-separated specs NAME[:key=value...]; --list shows the names and keys")
    p.add_argument("--list", action="store_true", help="print every registered method and exit")
    p.add_argument("--markdown", action="store_true", help="with --list: print a markdown table (for the README)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each method runs once per seed")
    p.add_argument("--baselines", help="comma-separated classical baselines to train beside the methods as "
                                       "reference rows (e.g. tfidf,w2v-logreg); --list shows them")
    add_plugin_option(p)
    add_run_options(p)
    p.add_argument("--label-names", help="comma-separated names of integer labels 0..K-1 (default: from the data)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load a local model folder that has only pickle *.bin weights (runs code from the file)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"folder for records and tables (default {DEFAULT_RESULTS}/, which git ignores)")
    p.add_argument("--cache-dir", default=default_cache_dir(),
                   help="where tokenized data is cached (env PEFT_LAB_CACHE)")
    p.add_argument("--target-accuracy", type=float,
                   help="validation accuracy for the budget-to-reach column (default: 95%% of the best final)")
    p.add_argument("--rerun", action="store_true", help="run again even where an ok record exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show stack traces for errors")
    return p


def list_methods(markdown: bool = False) -> str:
    """Every registered method with its summary and default hyperparameters, as text or a markdown table."""
    rows = []
    for name, cls in registered().items():
        defaults = " ".join(f"{k}={'+'.join(v) if isinstance(v, tuple) else v}" for k, v in cls().describe().items())
        rows.append((name, cls.summary, defaults))
    if markdown:
        from tabulate import tabulate

        return tabulate([(f"`{n}`", s, f"`{d}`") for n, s, d in rows], headers=["method", "what trains", "defaults"],
                        tablefmt="github")
    from baselines import registered as baselines

    refs = [(name, cls.summary, " ".join(f"{k}={v}" for k, v in cls().describe().items()))
            for name, cls in baselines().items()]
    w = max(len(n) for n, _, _ in rows + refs) + 1
    text = "\n".join(f"{n:<{w}} {s}\n{'':<{w}} defaults: {d}" for n, s, d in rows)
    return text + "\n\nClassical baselines (--baselines), trained to convergence as reference rows:\n" + "\n".join(
        f"{n:<{w}} {s}\n{'':<{w}} defaults: {d}" for n, s, d in refs)


def compare(args: argparse.Namespace, command: str) -> int:
    """Check every input, resolve the model and data once, plan the runs, execute them, write the tables."""
    if args.list:
        print(list_methods(args.markdown))
        return 0
    entries = _entries(args)
    seeds = _parse_ints(args.seeds, "--seeds")
    device = env.resolve_device(args.device)  # --device cuda without CUDA is refused here, not in every run
    source = resolve_source(args.dataset, args.data_dir, text_column=args.text_column,
                            label_column=args.label_column, splits=args.splits, revision=args.data_revision)
    settings = run_settings(args, source)
    # Every setting is checked before the minutes of loading (a bad --eval-limit, --val-fraction, budget...).
    RunConfig(method=entries[0].label, seed=seeds[0], **settings)
    results = Path(args.results)
    folder = runs_dir(results, source.name)
    _check_writable(folder)  # before the minutes of loading, not after
    texts = any(e.stages != stages.DEFAULT for e in entries)  # a baseline reads texts, not tokens
    common, settings["max_length"] = _prepare(args, source, command, texts)
    plan = make_plan(entries, seeds, settings, common, folder, rerun=args.rerun)
    for job in plan.skipped:
        print(f"{_name(job)}: ok record exists ({Path(job['record_path']).name}), skipped; --rerun to run again")
    trained = [job for job in plan.jobs if tuple(job["stages"]) == stages.DEFAULT]  # baselines: seconds, no budget
    if trained:
        print(estimate.describe(len(trained), Budget.parse(args.budget), common["model"]["path"],
                                Path(common["tokens"]), common["num_labels"], common["pad_id"], args.batch_size,
                                device))
    if args.memory_cap and device.type != "cuda":
        print("note: --memory-cap is not enforced on the CPU; runs use the memory they need", file=sys.stderr)
    not_ok, stopped = _execute(plan.jobs)
    rendered = write_tables(results, source.name, args.target_accuracy)
    if plan.experiment_id in rendered:
        print(f"\n{rendered[plan.experiment_id]}\nTables: {results / source.name}/comparison.md, comparison.csv")
    if stopped:
        print(f"interrupted ({stopped.cause}): finished runs are kept; the same command resumes", file=sys.stderr)
        return stopped.exit_code
    if not_ok:
        print(f"error: {len(not_ok)} of {len(plan.jobs)} runs did not end ok: {', '.join(not_ok)}", file=sys.stderr)
        return ExitCode.RUN_NOT_OK
    return ExitCode.OK


def _entries(args: argparse.Namespace) -> list[Entry]:
    """The comparison's rows: the fine-tuning method specs, then the classical baselines asked for, each with the
    worker stages it declares."""
    from baselines import parse_spec as parse_baseline

    entries = [Entry(spec.label, stages.DEFAULT) for spec in parse_specs(args.methods or "")] if args.methods or \
        not args.baselines else []
    for text in filter(None, (t.strip() for t in (args.baselines or "").split(","))):
        spec = parse_baseline(text)
        entries.append(Entry(spec.label, spec.baseline.stages))
    labels = [e.label for e in entries]
    if len(set(labels)) < len(labels):
        raise SpecError(f"spec given more than once: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
    return entries


def _prepare(args: argparse.Namespace, source, command: str, texts: bool) -> tuple[dict, int]:
    """Resolve the model, load and split the data, tokenize it once into the cache: what every job shares, and the
    max_length fitted to the model's positions. `texts`: also keep the raw texts, for runs that read them."""
    label_names = tuple(n.strip() for n in args.label_names.split(",")) if args.label_names else None
    model = resolve_model(args.model, allow_pickle=args.allow_pickle, revision=args.revision)
    max_length = _max_length(args.max_length, source.default_max_length, model["n_positions"])
    splits = load_splits(source, val_fraction=args.val_fraction, train_limit=args.train_limit, seed=args.split_seed,
                         eval_limit=args.eval_limit, label_names=label_names, log=print)  # even --quiet
    if len(splits.train) < args.batch_size:
        print(f"warning: {len(splits.train)} training rows are fewer than one batch of {args.batch_size}: "
              f"every step sees the whole training set", file=sys.stderr)
    tokenizer = load_tokenizer(model["path"])
    cache = Path(args.cache_dir).expanduser()
    key = {"model": model["weights_sha256"], "tokenizer": model["files_sha256"],
           "data": splits.identity["content_sha256"]}
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, key, cache)
    _warn_if_truncating(tokens, max_length)
    extra = {"plugins": args.plugin}  # a run's process imports them again: its method may be one of theirs
    if texts:
        extra["texts"] = str(save_texts(splits, cache))
    return common_job(model, splits, tokenizer.pad_token_id, tokens, command, args.quiet, **extra), max_length


def _execute(jobs: list[dict]) -> tuple[list[str], Stopped | None]:
    """Run the jobs through the executor, saying at once when one does not end ok; (those, the stop if any)."""
    not_ok = []
    try:
        with Executor() as executor:
            for job in jobs:
                print(f"{_name(job)}: training ({job['run_id']})")
                try:
                    record = executor.run(job)
                except Stopped as e:
                    print(f"{_name(job)}: cancelled: interrupted ({e.cause})", file=sys.stderr)
                    raise
                if not record.ok:  # said at once, not only in the table at the end
                    not_ok.append(f"{_name(job)} ({record.status.value})")
                    print(f"{_name(job)}: {record.status.value}: {record.error}", file=sys.stderr)
    except Stopped as e:  # the run is recorded `cancelled`; the finished ones still make their tables
        return not_ok, e
    return not_ok, None


def _name(job: dict) -> str:
    return f"{job['config']['method']} seed {job['config']['seed']}"


def _max_length(asked: int | None, default: int, n_positions: int | None) -> int:
    if asked is None:
        return min(default, n_positions or default)
    if n_positions and asked > n_positions:
        raise UserError(f"--max-length {asked} exceeds the model's {n_positions} positions")
    return asked


def _warn_if_truncating(tokens: Path, max_length: int) -> None:
    """Say when --max-length cuts most training texts: allowed, but rarely what the user meant."""
    lengths = load_tokenized(tokens)["train"].lengths
    cut = float((lengths >= max_length).mean())
    if cut > 0.5:
        print(f"warning: --max-length {max_length} cuts {cut:.0%} of the training texts to {max_length} tokens",
              file=sys.stderr)


def _parse_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise UserError(f"{flag} must be integers >= 0, got {text!r}")
    if not values:
        raise UserError(f"{flag} is empty")
    return list(dict.fromkeys(values))


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UserError(f"cannot write results to {folder}: {e.strerror}") from None


def _dash_values(argv: list[str]) -> list[str]:
    """`--budget -5s` as `--budget=-5s`: argparse takes a value that starts with '-' for an option and dies in a
    usage dump, where the budget's own one-line error says what is wrong."""
    out = []
    for token in argv:
        if out and out[-1] in _VALUE_FLAGS and token[:1] == "-" and token[1:2].isdigit():
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


_VALUE_FLAGS = {"--seeds", "--target-accuracy", *value_flags()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_dash_values(argv))
    command = "python -m runners.compare " + shlex.join(argv)
    try:
        with stop_on_signals():  # SIGTERM too stops the current run cleanly, and the tables are still written
            return compare(args, command)
    except (UserError, SpecError) as e:
        if args.debug:  # the stack trace is added; the exit code still says "your mistake"
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.USER_MISTAKE
    except KeyboardInterrupt as e:  # a signal before the runs started: nothing to cancel, no table to write
        stop = e if isinstance(e, Stopped) else Stopped()
        print(f"interrupted ({stop.cause})", file=sys.stderr)
        return stop.exit_code
    except OSError as e:  # disk full, permissions: where it happened and why, in one line
        if args.debug:
            traceback.print_exc()
        print(f"error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", file=sys.stderr)
        return ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
