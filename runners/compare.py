"""`python -m runners.compare`: train every method spec x seed, each in its own process, then write the tables."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

from methods import SpecError, parse_specs, registered
from runners import environment as env
from runners import estimate, stages, tune
from runners.batches import default_cache_dir, load_tokenized, tokenize_cached
from runners.budget import Budget
from runners.cli import add_plugin_option, add_run_options, run_settings, value_flags
from runners.config import RunConfig
from runners.data import load_splits, save_texts
from runners.errors import UserError
from runners.executor import ExitCode, Stopped, SubprocessExecutor, make_executor, stop_on_signals
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
    p.add_argument("--label-names", help="names of integer labels 0..K-1, comma-separated; string labels: their order")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load a local model folder that has only pickle *.bin weights (runs code from the file)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"folder for records and tables (default {DEFAULT_RESULTS}/, which git ignores)")
    p.add_argument("--cache-dir", default=default_cache_dir(),
                   help="where tokenized data is cached (env PEFT_LAB_CACHE)")
    p.add_argument("--target-accuracy", type=float,
                   help="validation accuracy for the budget-to-reach column (default: 95%% of the best final)")
    p.add_argument("--rerun", action="store_true", help="run again even where an ok record exists")
    p.add_argument("--workers", help="runs at once: local processes (default one per visible GPU on CUDA, 1 on the "
                                     "CPU; on the CPU each gets its share of the cores), or Ray tasks at a time")
    p.add_argument("--executor", default="local", help="local (processes on this machine) or ray (pip install -e "
                                                        "'.[ray]'; a local instance unless --ray-address)")
    p.add_argument("--ray-address", help="with --executor ray: join a running cluster (auto or HOST:PORT)")
    # What the serve stage does (runners.serving): these change no result, so they are job settings, not RunConfig
    # fields, and no run id depends on them.
    p.add_argument("--skip-serving", action="store_true",
                   help="skip the serve stage (artifact size, merge check, serving latency); training cost is kept")
    p.add_argument("--save-models", metavar="DIR", help="keep each run's trained model in DIR/<run_id>/ for "
                                                         "`python -m runners.predict` (--rerun to save recorded runs)")
    p.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="price of one device-hour, for the cost columns (default: a list price for common GPUs, "
                        "none on the CPU; runners.prices)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show stack traces for errors")
    return p


def list_methods(markdown: bool = False) -> str:
    """Every registered method with its summary and default hyperparameters, as text or a markdown table."""
    rows = []
    for name, cls in registered().items():
        defaults = " ".join(f"{k}={_shown(v)}" for k, v in cls().describe().items())
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


def _shown(value: object) -> str:
    """A hyperparameter as a spec takes it: a list joined by '+', a float short (1e-05, 0.03)."""
    if isinstance(value, (tuple, list)):
        return "+".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    budgets = _budgets(settings.pop("budget"))
    # Every setting is checked before the minutes of loading (a bad --eval-limit, --val-fraction, budget...).
    RunConfig(method=entries[0].label, seed=seeds[0], budget=budgets[0], **settings)
    _check_tuning(settings, entries, seeds)
    # the executor is chosen (and a bad --workers or --executor refused) before the minutes of loading
    executor = make_executor(args.executor, _parse_workers(args.workers), args.ray_address, quiet=args.quiet,
                             device=device.type, name=_name, serial=Executor)
    results = Path(args.results)
    folder = runs_dir(results, source.name)
    _check_writable(folder)  # before the minutes of loading, not after
    texts = any(e.stages != stages.DEFAULT for e in entries)  # a baseline reads texts, not tokens
    common, settings["max_length"] = _prepare(args, source, command, texts)
    if args.memory_cap and device.type != "cuda":
        print("note: --memory-cap is not enforced on the CPU; runs use the memory they need", file=sys.stderr)
    not_ok, stopped, experiment_ids, runs = [], None, [], []
    try:
        with executor:
            for budget in budgets:  # the whole comparison, tuning included, at each budget
                if len(budgets) > 1:
                    print(f"\n== budget {budget} ==")
                ids, failed = _compare_at(args, entries, seeds, {**settings, "budget": budget}, common, folder,
                                          device, executor, runs)
                experiment_ids += ids
                not_ok += failed
    except Stopped as e:  # the runs are recorded `cancelled`; the finished ones still make their tables
        stopped = e
    rendered = write_tables(results, source.name, args.target_accuracy)
    for eid in dict.fromkeys(experiment_ids):
        if eid in rendered:
            print(f"\n{rendered[eid]}")
    for key, text in rendered.items():  # the same comparison at several budgets, side by side
        if key.startswith("budgets-") and len(budgets) > 1 and any(eid in text for eid in experiment_ids):
            print(f"\n{text}")
    print(f"Tables: {results / source.name}/comparison.md, comparison.csv")
    if stopped:
        print(f"interrupted ({stopped.cause}): finished runs are kept; the same command resumes", file=sys.stderr)
        return stopped.exit_code
    if not_ok:
        print(f"error: {len(not_ok)} of {len(runs)} runs did not end ok: {', '.join(not_ok)}", file=sys.stderr)
        return ExitCode.RUN_NOT_OK
    return ExitCode.OK


def _compare_at(args: argparse.Namespace, entries: list[Entry], seeds: list[int], settings: dict, common: dict,
                folder: Path, device, executor, runs: list[dict]) -> tuple[list[str], list[str]]:
    """One budget's comparison: the learning-rate search where asked, then every entry × seed; `runs` gains the jobs
    run. Returns the experiment's id and the runs that did not end ok (a search trial that diverged is an outcome,
    not a fault)."""
    not_ok: list[str] = []
    tuned = [e for e in entries if e.stages == stages.DEFAULT] if settings["tune_lr"] else []
    rows, choices, said = list(entries), {}, False

    def say_estimate(runs: int, searched: int = 0) -> None:  # before the first training run, and only if one is
        nonlocal said
        if runs and not said:
            said = True
            print(estimate.describe(runs, Budget.parse(settings["budget"]), common["model"]["path"],
                                    Path(common["tokens"]), common["num_labels"], common["pad_id"], args.batch_size,
                                    device)
                  + (f"; {searched} of these runs are the learning-rate search (more if its grid is extended)"
                     if searched else ""))

    if tuned:
        searched = tune.unsettled_trials([e.label for e in tuned], settings, common, folder, rerun=args.rerun)
        say_estimate(searched + len(tuned) * len(seeds) if searched else 0, searched)

        def run_trials(jobs: list[dict]) -> None:
            not_ok.extend(_execute(executor, jobs, expected=tune.SETTLED))
            runs.extend(jobs)

        choices = tune.search([e.label for e in tuned], settings, common, folder, run_trials, rerun=args.rerun)
        rows = [replace(e, settings={"lr": choices[e.label].lr}) if e.label in choices else e for e in entries]
    plan = make_plan(rows, seeds, settings, common, folder, rerun=args.rerun)
    say_estimate(sum(tuple(job["stages"]) == stages.DEFAULT for job in plan.jobs))  # baselines: seconds, no budget
    for job in plan.skipped:
        print(f"{_name(job)}: ok record exists ({Path(job['record_path']).name}), skipped; --rerun to run again")
    unsearched = [job for job in plan.jobs if job["config"]["method"] in choices
                  and choices[job["config"]["method"]].lr is None]
    for job in unsearched:  # its search found no rate that trains: the reported seeds say so, loudly
        record = tune.unsearched_record(job, choices[job["config"]["method"]])
        not_ok.append(f"{_name(job)} ({record.status.value})")
        print(f"{_name(job)}: {record.status.value}: {record.error}", file=sys.stderr)
    ran = [job for job in plan.jobs if job not in unsearched]
    not_ok += _execute(executor, ran)
    runs.extend(ran)
    return [plan.experiment_id], not_ok


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
    extra = {"plugins": args.plugin,  # a run's process imports them again: its method may be one of theirs
             "serving": {"skip": args.skip_serving, "price_per_hour": args.price_per_hour,
                         "save_models": str(Path(args.save_models).resolve()) if args.save_models else None}}
    if texts:
        extra["texts"] = str(save_texts(splits, cache))
    return common_job(model, splits, tokenizer.pad_token_id, tokens, command, args.quiet, **extra), max_length


def _execute(executor, jobs: list[dict], expected: tuple = ()) -> list[str]:
    """Run the jobs through the executor, saying at once when one does not end ok; return those (less the ones
    whose status is `expected`, such as a search trial that diverged: said, but not a fault of the command). A pool
    announces its runs itself (one overall bar, a line as each starts and ends); one at a time, they are said here."""
    if not jobs:
        return []
    not_ok, current = [], {}

    def announced():
        for job in jobs:
            current["job"] = job
            print(f"{_name(job)}: training ({job['run_id']})")
            yield job

    try:
        for record in executor.map(jobs if executor.announces else announced()):
            if not record.ok:  # said at once, not only in the table at the end
                name = _name({"config": record.config.to_dict()})
                if record.status not in expected:
                    not_ok.append(f"{name} ({record.status.value})")
                print(f"{name}: {record.status.value}: {record.error}", file=sys.stderr)
    except Stopped as e:
        if "job" in current and not executor.announces:
            print(f"{_name(current['job'])}: cancelled: interrupted ({e.cause})", file=sys.stderr)
        raise
    return not_ok


def _name(job: dict) -> str:
    cfg = job["config"]
    if cfg.get("search"):
        return f"{cfg['method']} lr {cfg['lr']:g} search seed {cfg['seed']}"
    return f"{cfg['method']} seed {cfg['seed']}" + (f" (lr {cfg['lr']:g})" if cfg.get("tune_lr") and cfg["lr"] else "")


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


def _parse_workers(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--workers must be an integer >= 1, got {text!r}") from None


def _budgets(text: str) -> list[str]:
    """`30s,2m,8m` to its budgets, each checked; several share one unit, so that one axis shows them all."""
    budgets = list(dict.fromkeys(b.strip() for b in str(text).split(",") if b.strip()))
    if not budgets:
        raise UserError("--budget is empty")
    units = {Budget.parse(b).unit for b in budgets}
    if len(units) > 1:
        raise UserError(f"--budget {text}: the budgets of one command share a unit, got {', '.join(sorted(units))}")
    return budgets


def _check_tuning(settings: dict, entries: list[Entry], seeds: list[int]) -> None:
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


_VALUE_FLAGS = {"--seeds", "--target-accuracy", "--workers", *value_flags()}


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
