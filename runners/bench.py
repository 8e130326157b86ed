"""`python -m runners.bench`: our training loop against `transformers.Trainer` peers on the same device, data and
number of samples; prints and writes samples/s, real tokens/s, MFU, peak memory and the ratios ours/peer.
With `--ablate`, instead: what each speed-up of our loop buys, turned off one at a time, and torch.compile.

Each of our measurements is a run of `runners.worker` through the executor `runners.compare` uses (its own process,
so its peak memory is its own), read from the run's record, kept in `<results>/runs/`; each peer runs in its own
process too.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from runners import environment as env
from runners import plan
from runners.errors import UserError
from runners.executor import ExitCode, Stopped, SubprocessExecutor, stop_on_signals
from runners.records import write_text_atomic
from runners.speedups import CUDA_ONLY, SPEEDUPS

# Where the runs execute, as in `runners.compare`: each in its own process. The one seam to swap (tests run in-process).
Executor = SubprocessExecutor
PEAK_TFLOPS = {"cuda": 989.0}  # H100 SXM dense bf16; pass --peak-tflops for another device (none for the CPU)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="hub id or local folder (a real checkpoint)")
    p.add_argument("--model-shape", choices=("gpt2",), help="GPT-2-small (124M) from its config, random weights")
    p.add_argument("--tokenizer", default="gpt2", help="with --model-shape: hub id or folder of GPT-2's tokenizer")
    p.add_argument("--dataset", default="tweets")
    p.add_argument("--data-dir")
    p.add_argument("--max-length", type=int)
    p.add_argument("--samples", type=int, default=256, help="training samples per measurement (default 256)")
    p.add_argument("--batch-size", type=int, default=32, help="our loop's batch (the peers keep their own)")
    p.add_argument("--methods", help="our runs, as method specs (see `runners.compare --list`); the peers train "
                                     "every weight, so include a spec that does to compare like with like")
    p.add_argument("--peers", default="trainer-seed,trainer-tuned")
    p.add_argument("--ablate", action="store_true",
                   help="instead of the peers: each method with every speed-up on, with each turned off in turn, "
                        "with all off, and with torch.compile (its compile time apart)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--peak-tflops", type=float, help="the device's peak for MFU (default: 989 on CUDA, none on CPU)")
    p.add_argument("--results", default="results/bench", help="folder for the tables, and the runs' records in runs/")
    p.add_argument("--peer", help=argparse.SUPPRESS)  # the peer's own process: JOB.json in, its numbers out
    return p


def gpt2_shape(tokenizer: str, cache: Path) -> Path:
    """A folder holding GPT-2-small's architecture with random weights (seed 0) and GPT-2's tokenizer files."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = cache / "gpt2-shape-random"
    if not (folder / "model.safetensors").exists():
        import torch

        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
        AutoTokenizer.from_pretrained(tokenizer).save_pretrained(folder)
    return folder


def matmul_flops_per_token(config, mean_length: float) -> float:
    """Training FLOPs per real token when every weight trains: 6·N_matmul + 12·n_layer·n_embd·T (attention scores and
    mixing), N_matmul the body's matmul weights plus the head, T the mean real sequence length."""
    d, layers = config.n_embd, config.n_layer
    n_matmul = layers * 12 * d * d  # c_attn 3d², attn c_proj d², c_fc 4d², mlp c_proj 4d²
    return 6 * n_matmul + 12 * layers * d * mean_length


def bench(args: argparse.Namespace, command: str) -> int:
    from transformers import AutoConfig

    from runners.batches import default_cache_dir, tokenize_cached
    from runners.config import RunConfig
    from runners.data import load_splits
    from runners.models import load_tokenizer, resolve_model
    from runners.peers import PEERS
    from runners.sources import resolve_source

    if bool(args.model) == bool(args.model_shape):
        raise UserError("give one of --model or --model-shape gpt2")
    if not args.methods:
        raise UserError("give --methods (see python -m runners.compare --list)")
    specs = [m for m in args.methods.split(",") if m]
    peers = [p for p in args.peers.split(",") if p]
    if unknown := [p for p in peers if p not in PEERS]:
        raise UserError(f"unknown peer {', '.join(unknown)}; the peers are {', '.join(PEERS)}")
    cache = Path(default_cache_dir()).expanduser()
    model = resolve_model(str(gpt2_shape(args.tokenizer, cache)) if args.model_shape else args.model)
    model_dir = model["path"]
    model_name = "GPT-2-small shape, random weights" if args.model_shape else args.model
    config = AutoConfig.from_pretrained(model_dir)
    source = resolve_source(args.dataset, args.data_dir)
    max_length = args.max_length or min(source.default_max_length, config.n_positions)
    splits = load_splits(source, val_fraction=0.05, train_limit=None, eval_limit=64, seed=RunConfig.split_seed,
                         log=lambda *_: None)  # the split the measured runs' RunConfig names (its default)
    tokenizer = load_tokenizer(model_dir)
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, {"tokenizer": model_dir, "data": splits.identity["content_sha256"]},
                             cache)
    device = env.resolve_device(args.device)
    peak = args.peak_tflops or PEAK_TFLOPS.get(device.type)
    # Our runs are the worker's, as `runners.compare` would run them with these settings.
    common = plan.common_job(model, splits, tokenizer.pad_token_id, tokens, command, quiet=True)
    settings = dict(seed=0, dataset=source.name, data_dir=args.data_dir, model=args.model or model_dir,
                    budget=f"{args.samples}samples", batch_size=args.batch_size, max_length=max_length,
                    eval_limit=64, checkpoints=(1.0,), device=args.device)
    peer_job = {"tokens": str(tokens), "model_dir": model_dir, "num_labels": splits.num_labels,
                "pad_id": tokenizer.pad_token_id, "samples": args.samples, "max_length": max_length,
                "device": args.device}
    header = (f"Model: {model_name} (`{model_dir}`); data: {args.dataset} from "
              f"`{splits.identity['source']}`, max_length {max_length}; {args.samples} training samples per "
              f"measurement; device: {device.type} ({env.device_info(device)['name']})")
    with Executor() as executor:
        def ours(spec: str, what: str, **loop) -> dict:
            job = plan.job_for(common, RunConfig(method=spec, **settings, **loop), Path(args.results) / "runs")
            return _logged(what, args.samples, lambda: measure_ours(executor, job))

        def peer(name: str) -> dict:
            return _logged(f"{name} (all weights)", args.samples, lambda: measure_peer({**peer_job, "peer": name}))

        if args.ablate:
            df = ablation(specs, ours, device)
            header += ("; each speed-up of our loop turned off in turn (`--ablate NAME` in `runners.compare`)" +
                       (f"; {' and '.join(CUDA_ONLY)} are CUDA-only, so not measured here" if device.type != "cuda"
                        else "") + "; break-even: the samples after which torch.compile's compile time is paid back")
            stem = f"{args.dataset}-{device.type}-ablation"
        else:
            df = against_peers(specs, peers, ours, peer, config, peak)
            header += "; MFU: " + (
                f"training FLOPs per real token 6·N_matmul + 12·n_layer·n_embd·T̄, against {peak:g} TFLOP/s, for "
                f"runs that train every weight" if peak else "omitted (no peak FLOP/s known for this device)")
            stem = f"{args.dataset}-{device.type}"
    table = _markdown(df)
    out = Path(args.results)
    context = f"Command: `{command}`\nVersions: {env.versions()}; git {env.git_state()}; {env.now()}"
    write_text_atomic(out / f"{stem}.md", f"{header}\n\n{context}\n\n{table}\n")
    write_text_atomic(out / f"{stem}.csv", df.to_csv(index=False))
    print(f"\n{header}\n\n{table}\n\nWritten: {out / stem}.md, .csv; our runs' records in {out / 'runs'}/")
    return 0


def measure_ours(executor, job: dict) -> dict:
    """One of our runs, by the worker through the executor, as `runners.compare` runs it: its record's measurements
    (training time excludes loading, compiling and evaluation), or the error it ended with."""
    record = executor.run(job)
    if not record.ok:
        return {"error": f"{record.status.value}: {record.error}"}
    return {**record.measurements.model_dump(), "batch_size": record.config.batch_size}


def measure_peer(job: dict) -> dict:
    """A `Trainer` peer, in its own process so that its peak memory is its own: `Trainer` is another loop, so this
    is the one measurement that does not run in the worker. Its numbers under the names of our records'."""
    fd, path = tempfile.mkstemp(prefix="peft-lab-peer-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    try:
        proc = subprocess.run([sys.executable, "-m", "runners.bench", "--peer", path], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def run_peer(job: dict) -> dict:
    """In the peer's process: `Trainer` in the peer's setup (runners.peers) for the job's samples."""
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from runners.batches import load_tokenized
    from runners.peers import run_trainer

    hf_logging.set_verbosity_error()
    device = env.resolve_device(job["device"])
    env.reset_peak_memory(device)
    set_seed(0)  # before loading, as the worker does: the new head's initial weights
    r = run_trainer(job["peer"], job["model_dir"], load_tokenized(job["tokens"])["train"], samples=job["samples"],
                    num_labels=job["num_labels"], pad_id=job["pad_id"], max_length=job["max_length"], device=device)
    return {"train_seconds": r["seconds"], "samples": r["samples"], "tokens": r["tokens"],
            "samples_per_second": r["samples"] / r["seconds"], "tokens_per_second": r["tokens"] / r["seconds"],
            "trainable_params": r["trainable"], "total_params": r["total"],
            "peak_memory_mib": env.peak_memory(device)["peak_mib"], "batch_size": r["batch_size"]}


def _logged(what: str, samples: int, measure) -> dict:
    print(f"{what}: measuring {samples} samples ...", flush=True)
    r = measure()
    if "error" in r:
        print(f"  failed: {r['error']}", file=sys.stderr)
    return r


def against_peers(specs: list[str], peers: list[str], ours, peer, config, peak: float | None) -> pd.DataFrame:
    """One row per method spec of ours and per peer, with each one's speed relative to each peer's."""
    rows = []
    for runner, method in [("ours", m) for m in specs] + [(p, None) for p in peers]:
        r = ours(method, f"ours {method}") if method else peer(runner)
        if "error" in r:
            rows.append({"runner": runner, "method": method, "error": r["error"]})
            continue
        per_token = matmul_flops_per_token(config, r["tokens"] / r["samples"])
        every_weight = r["trainable_params"] == r["total_params"]  # the formula counts a backward through each
        mfu = per_token * r["tokens_per_second"] / (peak * 1e12) if peak and every_weight else None
        rows.append({"runner": runner, "method": method or "all weights (Trainer)", "trains all": every_weight,
                     "batch": r["batch_size"], "samples/s": r["samples_per_second"],
                     "real tokens/s": r["tokens_per_second"], "MFU %": None if mfu is None else 100 * mfu,
                     "peak MiB": r["peak_memory_mib"]})
    df = pd.DataFrame(rows)
    for name in peers:
        base = df[(df.runner == name) & df.get("samples/s", pd.Series(dtype=float)).notna()]
        if len(base):
            df[f"× {name}"] = df["samples/s"] / float(base["samples/s"].iloc[0])
    reference = df[(df.runner == "ours") & df.get("trains all", pd.Series(dtype=bool)).eq(True)]
    if len(reference):  # our run that trains every weight, as the peers do
        df["× ours, all weights"] = df["samples/s"] / float(reference["samples/s"].iloc[0])
    return df


def ablation(specs: list[str], ours, device) -> pd.DataFrame:
    """For each method spec: every speed-up on, each off in turn, all off, and all on plus torch.compile."""
    names = [n for n in SPEEDUPS if device.type == "cuda" or n not in CUDA_ONLY]
    variants = ([("all on", (), False)] + [(f"no {n}", (n,), False) for n in names] +
                [("all off", tuple(sorted(SPEEDUPS)), False), ("all on + torch.compile", (), True)])
    rows = []
    for spec in specs:
        base = None
        for loop, ablate, compiled in variants:
            r = ours(spec, f"{spec} [{loop}]", ablate=ablate, compile=compiled)
            if "error" in r:
                rows.append({"method": spec, "loop": loop, "error": r["error"]})
                continue
            rate = r["samples_per_second"]
            base = rate if not ablate and not compiled else base
            row = {"method": spec, "loop": loop, "samples/s": rate, "× all on": rate / base if base else None,
                   "real tokens/s": r["tokens_per_second"], "peak MiB": r["peak_memory_mib"]}
            if compiled and base:
                row["compile s"] = r["compile_seconds"]
                saved = 1 / base - 1 / rate  # seconds saved per sample
                row["break-even samples"] = r["compile_seconds"] / saved if saved > 0 else float("inf")
            rows.append(row)
    return pd.DataFrame(rows)


FORMATS = {"samples/s": "{:.3g}", "real tokens/s": "{:,.0f}", "MFU %": "{:.2f}", "peak MiB": "{:,.0f}",
           "batch": "{:.0f}", "compile s": "{:.1f}", "break-even samples": "{:,.0f}"}


def _markdown(df: pd.DataFrame) -> str:
    shown = df.astype(object)
    for col in shown:
        fmt = FORMATS.get(col, "{:.2f}" if col.startswith("×") else None)
        if fmt:
            shown[col] = [("never" if v == float("inf") else fmt.format(v)) if pd.notna(v) else "–" for v in df[col]]
    return tabulate(shown.fillna("–"), headers="keys", tablefmt="github", showindex=False, disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.peer:
        job = json.loads(Path(args.peer).read_text())
        Path(args.peer).write_text(json.dumps(run_peer(job)))
        return 0
    try:
        with stop_on_signals():  # SIGTERM too: the run in progress is recorded cancelled, as in runners.compare
            return bench(args, "python -m runners.bench " + shlex.join(argv))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.USER_MISTAKE
    except KeyboardInterrupt as e:
        stop = e if isinstance(e, Stopped) else Stopped()
        print(f"interrupted ({stop.cause})", file=sys.stderr)
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
