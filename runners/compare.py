"""`python -m runners.compare`: train every method spec x seed, each in its own process, then write the tables."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from methods import SpecError, parse_specs, registered
from runners import environment as env
from runners.batches import default_cache_dir, tokenize_cached
from runners.budget import Budget
from runners.config import RunConfig, stable_hash
from runners.data import DATASETS, dataset_info, load_splits
from runners.errors import UserError
from runners.memory import parse_size
from runners.models import load_tokenizer, resolve_model
from runners.records import SCHEMA, base_record, read_record, run_id, runs_dir, write_json_atomic
from runners.speedups import SPEEDUPS, parse_ablate
from runners.tables import write_tables


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.compare", description=__doc__)
    p.add_argument("--methods", help="comma-separated specs NAME[:key=value...]; --list shows the names and keys")
    p.add_argument("--list", action="store_true", help="print every registered method and exit")
    p.add_argument("--markdown", action="store_true", help="with --list: print a markdown table (for the README)")
    p.add_argument("--dataset", default="tweets", help=f"one of {', '.join(DATASETS)} (default tweets)")
    p.add_argument("--data-dir", help="read DIR/train.* and DIR/test.* (parquet, csv or jsonl) instead of the hub")
    p.add_argument("--model", default="gpt2", help="hub id or local folder with safetensors (default gpt2)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load a local model folder that has only pickle *.bin weights (runs code from the file)")
    p.add_argument("--budget", default="1epoch",
                   help="per run: Nepochs, Nsteps, Nsamples, a time (90s, 5m, 1h), Mtokens or flops (default 1epoch)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each method runs once per seed")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, help="override every method's default learning rate")
    p.add_argument("--max-length", type=int, help="tokens per example (default: 128 tweets, 512 imdb)")
    p.add_argument("--train-limit", type=int, help="seeded stratified subset of N training rows")
    p.add_argument("--eval-limit", type=int, help="at most N validation and N test rows (seeded, stratified)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of train held out for validation")
    p.add_argument("--checkpoints", default="1/8,1/4,1/2,1", help="budget fractions to evaluate validation at")
    p.add_argument("--test-each-checkpoint", action="store_true", help="also evaluate the test split at each")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--memory-cap", help="e.g. 2GiB: every method gets this much GPU memory (CUDA only)")
    p.add_argument("--ablate", default="", metavar="NAMES",
                   help="turn these speed-ups of the loop off (comma-separated, or 'all'), to measure them: "
                        + ", ".join(SPEEDUPS))
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each model; compile time is recorded apart from training time")
    p.add_argument("--results", default="results", help="folder for records and tables (default results/)")
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
    w = max(len(n) for n, _, _ in rows) + 1
    return "\n".join(f"{n:<{w}} {s}\n{'':<{w}} defaults: {d}" for n, s, d in rows)


def compare(args: argparse.Namespace, command: str) -> int:
    if args.list:
        print(list_methods(args.markdown))
        return 0
    specs = parse_specs(args.methods or "")
    seeds = _parse_ints(args.seeds, "--seeds")
    Budget.parse(args.budget)
    checkpoints = _parse_fractions(args.checkpoints)
    if args.memory_cap:
        parse_size(args.memory_cap)
    ablate = parse_ablate(args.ablate)
    dataset_info(args.dataset)  # a mistyped name fails here, before a results folder is made for it
    results = Path(args.results)
    folder = runs_dir(results, args.dataset)
    _check_writable(folder)  # before the minutes of loading, not after
    model = resolve_model(args.model, allow_pickle=args.allow_pickle)
    max_length = _max_length(args, model["n_positions"])
    log = (lambda *_: None) if args.quiet else print
    splits = load_splits(args.dataset, args.data_dir, val_fraction=args.val_fraction, train_limit=args.train_limit,
                         eval_limit=args.eval_limit, seed=0, log=print)  # data notes, even --quiet
    tokenizer = load_tokenizer(model["path"])
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, {"model": model["weights_sha256"], "tokenizer": model["path"],
                                                     "data": splits.identity["content_sha256"]},
                             Path(args.cache_dir).expanduser())
    majority = int(splits.train.label.mode()[0])
    job_common = {
        "schema": SCHEMA, "tokens": str(tokens), "model": {"path": model["path"]}, "model_identity": model,
        "data_identity": {**splits.identity, "label_names": list(splits.label_names)},
        "num_labels": splits.num_labels, "pad_id": tokenizer.pad_token_id,
        "majority_baseline": float((splits.test.label == majority).mean()),
        "git": env.git_state(), "command": command, "quiet": args.quiet,
    }
    identity = {"model": model["weights_sha256"], "data": splits.identity["content_sha256"]}
    if args.memory_cap and env.resolve_device(args.device).type != "cuda":
        print("note: --memory-cap is not enforced on the CPU; runs use the memory they need", file=sys.stderr)
    experiment_id = None
    status = 0
    for spec in specs:
        for seed in seeds:
            cfg = RunConfig(method=spec.label, seed=seed, dataset=args.dataset, data_dir=args.data_dir,
                            model=args.model, budget=args.budget, batch_size=args.batch_size,
                            eval_batch_size=args.eval_batch_size, lr=args.lr, max_length=max_length,
                            train_limit=args.train_limit, eval_limit=args.eval_limit,
                            val_fraction=args.val_fraction, checkpoints=checkpoints,
                            test_each_checkpoint=args.test_each_checkpoint, memory_cap=args.memory_cap,
                            device=args.device, ablate=ablate, compile=args.compile)
            experiment_id = stable_hash({**cfg.experiment(), **identity})
            rid = run_id(spec.label, seed, stable_hash({**cfg.key(), **identity}))
            path = folder / f"{rid}.json"
            existing = read_record(path)
            if existing and existing["status"] == "ok" and not args.rerun:
                log(f"{spec.label} seed {seed}: ok record exists ({path.name}), skipped; --rerun to run again")
                continue
            log(f"{spec.label} seed {seed}: training ({rid})")
            job = {**job_common, "config": cfg.to_dict(), "run_id": rid, "experiment_id": experiment_id,
                   "record_path": str(path)}
            code = _run_child(job, path)
            if code == 130:
                status = 130
                break
        if status:
            break
    rendered = write_tables(results, args.dataset, args.target_accuracy)
    if experiment_id in rendered:
        print(f"\n{rendered[experiment_id]}\nTables: {results / args.dataset}/comparison.md, comparison.csv")
    return status


def _run_child(job: dict, record_path: Path) -> int:
    """Run one job in a fresh Python process; if it dies without a record, write a `failed` one for it."""
    fd, job_path = tempfile.mkstemp(prefix="peft-lab-job-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(env.PROJECT_ROOT),
                                                                           os.environ.get("PYTHONPATH")]))}
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "runners.worker", job_path], env=child_env)
    interrupted = False
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the child got the same SIGINT; let it write its `cancelled` record
        proc.wait()
        code, interrupted = 130, True
    finally:
        os.unlink(job_path)
    record = read_record(record_path)
    if record is None or record_path.stat().st_mtime < started:  # none written by this child (an old one may stay)
        if interrupted:  # e.g. Ctrl-C while the child was still starting
            status, error = "cancelled", "interrupted (Ctrl-C) before the run started training"
        else:
            why = f"signal {-code}" if code < 0 else f"exit code {code}"
            status, error = "failed", f"run process died ({why}) before writing its record" + (
                "; killed, perhaps for lack of memory" if code == -9 else "")
        write_json_atomic(record_path, {**base_record(job, status, error), "timestamp": env.now()})
    return code


def _max_length(args: argparse.Namespace, n_positions: int | None) -> int:
    default = dataset_info(args.dataset).max_length
    if args.max_length is None:
        return min(default, n_positions or default)
    if n_positions and args.max_length > n_positions:
        raise UserError(f"--max-length {args.max_length} exceeds the model's {n_positions} positions")
    return args.max_length


def _parse_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise UserError(f"{flag} is empty")
    return list(dict.fromkeys(values))


def _parse_fractions(text: str) -> tuple[float, ...]:
    from fractions import Fraction

    try:
        return tuple(sorted({float(Fraction(x.strip())) for x in text.split(",") if x.strip()}))
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--checkpoints must be comma-separated fractions like 1/4,0.5,1, got {text!r}") from None


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UserError(f"cannot write results to {folder}: {e.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "python -m runners.compare " + shlex.join(argv)
    try:
        return compare(args, command)
    except (UserError, SpecError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permissions: where it happened and why, in one line
        if args.debug:
            raise
        print(f"error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
