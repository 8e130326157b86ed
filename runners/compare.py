"""`python -m runners.compare`: train every method spec x seed, each in its own process, then write the tables."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

# Only what `--help` and `--list` need is imported here: torch, transformers, pandas and scikit-learn take seconds to
# import, and are imported where a comparison first uses them (tests/test_cli.py holds this file to it).
from methods import SpecError
from runners.cli import (
    add_plugin_option,
    add_run_options,
    check_tuning,
    check_writable,
    dash_values,
    fit_max_length,
    list_methods,
    parse_entries,
    parse_ints,
    parse_workers,
    run_settings,
    value_flags,
    warn_if_sigint_ignored,
)
from runners.core.errors import UserError
from runners.core.signals import ExitCode, Stopped, stop_on_signals
from runners.execute.factory import make_executor
from runners.execute.progress import execute, job_name
from runners.execute.serial import SubprocessExecutor
from runners.job import stages
from runners.job.spec import Shared
from runners.measure import environment as env
from runners.planning import estimate
from runners.planning import search as tune
from runners.planning.plan import Entry, common_job, make_plan
from runners.planning.refusals import refusals, refuse
from runners.settings.budget import Budget, parse_budgets
from runners.settings.config import RunConfig
from runners.settings.search import EXTEND_LIMIT
from runners.store.records import DEFAULT_RESULTS, runs_dir

if TYPE_CHECKING:
    from runners.data.sources import Source

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
    p.add_argument("--label-names", help="names of integer labels 0..K-1, comma-separated; string labels: their order")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load a local model folder that has only pickle *.bin weights (runs code from the file)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"folder for records and tables (default {DEFAULT_RESULTS}/, which git ignores)")
    p.add_argument("--cache-dir", help="where tokenized data is cached (env PEFT_LAB_CACHE)")
    p.add_argument("--target-accuracy", type=float,
                   help="validation accuracy for the budget-to-reach column (default: 95%% of the best final)")
    p.add_argument("--rerun", action="store_true", help="run again even where an ok record exists")
    p.add_argument("--workers", help="runs at once: local processes (default one per visible GPU on CUDA, 1 on the "
                                     "CPU; on the CPU each gets its share of the cores), or Ray tasks at a time")
    p.add_argument("--executor", default="local", help="local (processes on this machine) or ray (pip install -e "
                                                        "'.[ray]'; a local instance unless --ray-address)")
    p.add_argument("--ray-address", help="with --executor ray: join a running cluster (auto or HOST:PORT)")
    # What the serve stage does: these change no result, so they are job settings, not RunConfig
    # fields, and no run id depends on them.
    p.add_argument("--skip-serving", action="store_true",
                   help="skip the serve stage (artifact size, merge check, serving latency); training cost is kept")
    p.add_argument("--save-models", metavar="DIR", help="keep each run's trained model in DIR/<run_id>/ for "
                                                         "`python -m runners.predict` (--rerun to save recorded runs)")
    p.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="price of one device-hour, for the cost columns (default: a list price for common GPUs, "
                        "none on the CPU; runners.measure.prices)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show stack traces for errors")
    return p


def compare(args: argparse.Namespace, command: str) -> int:
    """Check every input, resolve the model and data once, plan the runs, execute them, write the tables."""
    if args.list:  # with --model: which methods apply to its architecture (its config only: nothing loads)
        print(list_methods(args.markdown, args.model if getattr(args, "model_given", False) else None))
        return 0
    warn_if_sigint_ignored()
    entries, seeds, source, settings, budgets = check(args)
    imports_s = _import_worker()  # after the checks (a mistake is said at once), before torch loads: timed
    device = env.resolve_device(args.device)  # --device cuda without CUDA is refused here, not in every run
    # the executor is chosen (and a bad --workers or --executor refused) before the minutes of loading
    executor = make_executor(args.executor, parse_workers(args.workers), args.ray_address, quiet=args.quiet,
                             device=device.type, serial=Executor)
    results = Path(args.results)
    folder = runs_dir(results, source.name)
    check_writable(folder)  # before the minutes of loading, not after
    texts = any(e.stages != stages.DEFAULT for e in entries)  # a baseline reads texts, not tokens
    common, settings["max_length"] = _prepare(args, source, command, texts)
    refused = refusals(entries, common)  # from the model's config: before any run loads it
    if args.memory_cap and device.type != "cuda":
        print("note: --memory-cap is not enforced on the CPU; runs use the memory they need", file=sys.stderr)
    not_ok, stopped, experiment_ids, runs, clock = [], None, [], [], None
    try:
        with executor:  # a Ray executor knows its slots and threads once connected, here
            clock = estimate.Clock.of(executor, _cache_dir(args), env.device_info(device)["name"],
                                      common.model.model_dump(), imports_s)
            for budget in budgets:  # the whole comparison, tuning included, at each budget
                if len(budgets) > 1:
                    print(f"\n== budget {budget} ==")
                refuse(refused, [e for e in entries if e.label in refused], seeds, {**settings, "budget": budget},
                       common, folder)
                ids, failed = _compare_at(args, [e for e in entries if e.label not in refused], seeds,
                                          {**settings, "budget": budget}, common, folder, device, executor, runs,
                                          clock)
                experiment_ids += ids
                not_ok += failed
    except Stopped as e:  # the runs are recorded `cancelled`; the finished ones still make their tables
        stopped = e
    from runners.analysis.comparison import write_tables
    from runners.analysis.terminal import ending

    views: dict = {}  # the verdict and key columns are printed; the files hold every column
    rendered = write_tables(results, source.name, args.target_accuracy, views=views, page=True)
    print(ending(rendered, views, results / source.name, experiment_ids, several_budgets=len(budgets) > 1))
    if clock is not None and not stopped and (summary := clock.summary()):
        print(summary)
    if stopped:
        print(f"interrupted ({stopped.cause}): finished runs are kept; the same command resumes", file=sys.stderr)
        return stopped.exit_code
    if not_ok:
        print(f"error: {len(not_ok)} of {len(runs)} runs did not end ok: {', '.join(not_ok)}", file=sys.stderr)
        return ExitCode.RUN_NOT_OK
    return ExitCode.OK


def check(args: argparse.Namespace) -> tuple[list[Entry], list[int], Source, dict, list[str]]:
    """Every input that can be checked before the minutes of loading (the specs, seeds, data source, every setting,
    the budgets, the search's options): the entries, seeds, source, settings (less the budget) and budgets; a
    mistake is one UserError (or SpecError). Reads no file and loads nothing."""
    from runners.data.sources import resolve_source

    entries = parse_entries(args.methods, args.baselines)
    seeds = parse_ints(args.seeds, "--seeds")
    source = resolve_source(args.dataset, args.data_dir, text_column=args.text_column,
                            label_column=args.label_column, splits=args.splits, revision=args.data_revision)
    settings = run_settings(args, source)
    budgets = parse_budgets(settings.pop("budget"))
    RunConfig(method=entries[0].label, seed=seeds[0], budget=budgets[0], **settings)  # every setting, one system
    check_tuning(settings, entries, seeds)
    if args.price_per_hour is not None and not args.price_per_hour > 0:
        raise UserError(f"--price-per-hour must be > 0 (USD per device-hour), got {args.price_per_hour:g}")
    return entries, seeds, source, settings, budgets


def _compare_at(args: argparse.Namespace, entries: list[Entry], seeds: list[int], settings: dict, common: Shared,
                folder: Path, device, executor, runs: list[dict],
                clock: estimate.Clock) -> tuple[list[str], list[str]]:
    """One budget's comparison: the learning-rate search where asked, then every entry × seed; `runs` gains the jobs
    run. Returns the experiment's id and the runs that did not end ok (a search trial that diverged is an outcome,
    not a fault)."""
    not_ok: list[str] = []
    tuned = [e for e in entries if e.stages == stages.DEFAULT] if settings["tune_lr"] else []
    rows, choices, said = list(entries), {}, False

    def say_estimate(phases: tuple[int, ...], searched: int = 0) -> None:  # before the first run, if one trains
        nonlocal said
        if sum(phases) and not said:
            said = True
            labels = [e.label for e in entries if e.stages == stages.DEFAULT]  # baselines: seconds, no budget
            rounds = EXTEND_LIMIT if searched else 0  # each search may extend its grid this many times
            print(clock.estimate(Budget.parse(settings["budget"]), settings, common, device, labels, phases,
                                 searched, rounds, len(tuned) * len(settings["search_seeds"])).line(), flush=True)

    if tuned:
        searched = tune.unsettled_trials([e.label for e in tuned], settings, common, folder, rerun=args.rerun)
        say_estimate((searched, len(tuned) * len(seeds)) if searched else (), searched)

        def run_trials(jobs: list[dict]) -> None:
            not_ok.extend(execute(executor, jobs, clock, expected=tune.SETTLED))
            runs.extend(jobs)

        choices = tune.search([e.label for e in tuned], settings, common, folder, run_trials, rerun=args.rerun)
        rows = [replace(e, settings={"lr": choices[e.label].lr}) if e.label in choices else e for e in entries]
    plan = make_plan(rows, seeds, settings, common, folder, rerun=args.rerun)
    say_estimate((sum(job.stages == stages.DEFAULT for job in plan.jobs),))
    for job in plan.skipped:
        print(f"{job.name}: ok record exists ({Path(job.record_path).name}), skipped; --rerun to run again")
    unsearched = [job for job in plan.jobs if job.config.method in choices and choices[job.config.method].lr is None]
    for job in unsearched:  # its search found no rate that trains: the reported seeds say so, loudly
        record = tune.unsearched_record(job, choices[job.config.method])
        not_ok.append(f"{job_name(job)} ({record.status.value})")
        print(f"{job_name(job)}: {record.status.value}: {record.error}", file=sys.stderr)
    ran = [job for job in plan.jobs if job not in unsearched]
    not_ok += execute(executor, ran, clock)
    runs.extend(ran)
    return [plan.experiment_id], not_ok


def _prepare(args: argparse.Namespace, source, command: str, texts: bool) -> tuple[Shared, int]:
    """Resolve the model, load and split the data, tokenize it once into the cache: what every job shares, and the
    max_length fitted to the model's positions. `texts`: also keep the raw texts, for runs that read them."""
    from runners.data.batches import tokenize_cached
    from runners.data.models import load_tokenizer, pad_identity, resolve_model
    from runners.data.splits import load_splits, save_texts

    label_names = tuple(n.strip() for n in args.label_names.split(",")) if args.label_names else None
    model = resolve_model(args.model, allow_pickle=args.allow_pickle, revision=args.revision)
    max_length = fit_max_length(args.max_length, source.default_max_length, model["n_positions"])
    splits = load_splits(source, val_fraction=args.val_fraction, train_limit=args.train_limit, seed=args.split_seed,
                         eval_limit=args.eval_limit, label_names=label_names, log=print)  # even --quiet
    if len(splits.train) < args.batch_size:
        print(f"warning: {len(splits.train)} training rows are fewer than one batch of {args.batch_size}: "
              f"every step sees the whole training set", file=sys.stderr)
    tokenizer = load_tokenizer(model["path"])
    model["pad_token"] = pad_identity(tokenizer)  # the same for every method
    cache = _cache_dir(args)
    key = {"model": model["weights_sha256"], "tokenizer": model["files_sha256"],
           "data": splits.identity["content_sha256"]}
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, key, cache)
    _warn_if_truncating(tokens, max_length)
    extra = {"plugins": args.plugin,  # a run's process imports them again: its method may be one of theirs
             "serving": {"skip": args.skip_serving, "price_per_hour": args.price_per_hour,
                         "save_models": str(Path(args.save_models).resolve()) if args.save_models else None}}
    if texts:
        extra["texts"] = str(save_texts(splits, cache))
    return common_job(model, splits, tokenizer.pad_token_id, tokens, command, args.quiet, **extra), max_length


def _cache_dir(args: argparse.Namespace) -> Path:
    from runners.data.batches import default_cache_dir

    return Path(args.cache_dir or default_cache_dir()).expanduser()


def _import_worker() -> float:
    """Import what a run's process imports first (the worker: torch, transformers...), timed, for the estimate."""
    start = time.perf_counter()
    import runners.job.worker  # noqa: F401

    return time.perf_counter() - start


def _warn_if_truncating(tokens: Path, max_length: int) -> None:
    """Say when --max-length cuts most training texts: allowed, but rarely what the user meant."""
    from runners.data.batches import load_tokenized

    lengths = load_tokenized(tokens)["train"].lengths
    cut = float((lengths >= max_length).mean())
    if cut > 0.5:
        print(f"warning: --max-length {max_length} cuts {cut:.0%} of the training texts to {max_length} tokens",
              file=sys.stderr)


VALUE_FLAGS = {"--seeds", "--target-accuracy", "--workers", *value_flags()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(dash_values(argv, VALUE_FLAGS))
    args.model_given = any(a == "--model" or a.startswith("--model=") for a in argv)
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
