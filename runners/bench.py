"""`python -m runners.bench`: our training loop against `transformers.Trainer` peers on the same device, data and
number of samples; prints and writes samples/s, real tokens/s, MFU, peak memory and the ratios ours/peer.
With `--ablate`, instead: what each speed-up of our loop buys, turned off one at a time, and torch.compile.

Each measurement runs in its own process (as in `runners.compare`), so its peak memory is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from runners import environment as env
from runners.errors import UserError
from runners.speedups import CUDA_ONLY, SPEEDUPS

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
    p.add_argument("--results", default="results/bench")
    p.add_argument("--child", help=argparse.SUPPRESS)
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


def run_child(job: dict) -> dict:
    import torch
    from transformers.utils import logging as hf_logging

    from methods import parse_spec
    from runners.batches import load_tokenized
    from runners.config import RunConfig
    from runners.peers import run_trainer
    from runners.train import train

    hf_logging.set_verbosity_error()
    device = env.resolve_device(job["device"])
    env.reset_peak_memory(device)
    data = load_tokenized(job["tokens"])
    torch.manual_seed(0)
    if job["runner"] == "ours":
        from methods import ModelContext
        from runners import flops

        method = parse_spec(job["method"]).method
        cfg = RunConfig(method=job["method"], seed=0, budget=f"{job['samples']}samples",
                        batch_size=job["batch_size"], max_length=job["max_length"], checkpoints=(1.0,),
                        device=job["device"], ablate=tuple(job.get("ablate", ())), compile=job.get("compile", False))
        model = method.build(ModelContext(job["model_dir"], job["num_labels"], job["pad_id"], device,
                                          attention=cfg.attention))
        res = train(model, method, data, cfg, lr=method.params.lr, pad_id=job["pad_id"],
                    num_labels=job["num_labels"], device=device, flops=flops.measure(model, device), quiet=True)
        trainable, total = env.count_parameters(model)
        out = {"seconds": res.spent.seconds, "samples": res.spent.samples, "tokens": res.spent.tokens,
               "batch_size": job["batch_size"], "trainable": trainable, "total": total,
               "compile_seconds": res.compile_seconds}
    else:
        out = run_trainer(job["runner"], job["model_dir"], data["train"], samples=job["samples"],
                          num_labels=job["num_labels"], pad_id=job["pad_id"], max_length=job["max_length"],
                          device=device)
    return {**out, **env.peak_memory(device), "device": env.device_info(device)}


def measure(job: dict) -> dict:
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    try:
        proc = subprocess.run([sys.executable, "-m", "runners.bench", "--child", path], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def bench(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from runners.batches import default_cache_dir, tokenize_cached
    from runners.data import load_splits
    from runners.models import load_tokenizer, resolve_model
    from runners.sources import resolve_source

    if bool(args.model) == bool(args.model_shape):
        raise UserError("give one of --model or --model-shape gpt2")
    cache = Path(default_cache_dir()).expanduser()
    model_dir = str(gpt2_shape(args.tokenizer, cache) if args.model_shape else resolve_model(args.model)["path"])
    model_name = "GPT-2-small shape, random weights" if args.model_shape else args.model
    config = AutoConfig.from_pretrained(model_dir)
    source = resolve_source(args.dataset, args.data_dir)
    max_length = args.max_length or min(source.default_max_length, config.n_positions)
    splits = load_splits(source, val_fraction=0.05, train_limit=None, eval_limit=64, seed=0, log=lambda *_: None)
    tokenizer = load_tokenizer(model_dir)
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, {"tokenizer": model_dir, "data": splits.identity["content_sha256"]},
                             cache)
    device = env.resolve_device(args.device)
    peak = args.peak_tflops or PEAK_TFLOPS.get(device.type)
    common = {"tokens": str(tokens), "model_dir": model_dir, "num_labels": splits.num_labels,
              "pad_id": tokenizer.pad_token_id, "samples": args.samples, "batch_size": args.batch_size,
              "max_length": max_length, "device": args.device}
    if not args.methods:
        raise UserError("give --methods (see python -m runners.compare --list)")
    specs = [m for m in args.methods.split(",") if m]
    header = (f"Model: {model_name} (`{model_dir}`); data: {args.dataset} from "
              f"`{splits.identity['source']}`, max_length {max_length}; {args.samples} training samples per "
              f"measurement; device: {device.type} ({env.device_info(device)['name']})")
    if args.ablate:
        df = ablation(specs, common, device)
        header += ("; each speed-up of our loop turned off in turn (`--ablate NAME` in `runners.compare`)" +
                   (f"; {' and '.join(CUDA_ONLY)} are CUDA-only, so not measured here" if device.type != "cuda"
                    else "") + "; break-even: the samples after which torch.compile's compile time is paid back")
        stem = f"{args.dataset}-{device.type}-ablation"
    else:
        df = against_peers(specs, [p for p in args.peers.split(",") if p], common, config, peak)
        header += "; MFU: " + (
            f"training FLOPs per real token 6·N_matmul + 12·n_layer·n_embd·T̄, against {peak:g} TFLOP/s, for runs "
            f"that train every weight" if peak else "omitted (no peak FLOP/s known for this device)")
        stem = f"{args.dataset}-{device.type}"
    table = _markdown(df)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(f"{header}\n\nCommand: `python -m runners.bench {' '.join(sys.argv[1:])}`\n"
                                    f"Versions: {env.versions()}; git {env.git_state()}; {env.now()}\n\n{table}\n")
    df.to_csv(out / f"{stem}.csv", index=False)
    print(f"\n{header}\n\n{table}\n\nWritten: {out / stem}.md, .csv")
    return 0


def _measure_logged(job: dict, what: str) -> dict:
    print(f"{what}: measuring {job['samples']} samples ...", flush=True)
    r = measure(job)
    if "error" in r:
        print(f"  failed: {r['error']}", file=sys.stderr)
    return r


def against_peers(specs: list[str], peers: list[str], common: dict, config, peak: float | None) -> pd.DataFrame:
    """One row per method spec of ours and per peer, with each one's speed relative to each peer's."""
    rows = []
    for runner, method in [("ours", m) for m in specs] + [(p, None) for p in peers]:
        r = _measure_logged({**common, "runner": runner, "method": method}, f"{runner} {method or '(all weights)'}")
        if "error" in r:
            rows.append({"runner": runner, "method": method, "error": r["error"]})
            continue
        per_token = matmul_flops_per_token(config, r["tokens"] / r["samples"])
        every_weight = r["trainable"] == r["total"]  # the formula below counts a backward through every weight
        mfu = per_token * r["tokens"] / r["seconds"] / (peak * 1e12) if peak and every_weight else None
        rows.append({"runner": runner, "method": method or "all weights (Trainer)", "trains all": every_weight,
                     "batch": r["batch_size"],
                     "samples/s": r["samples"] / r["seconds"], "real tokens/s": r["tokens"] / r["seconds"],
                     "MFU %": None if mfu is None else 100 * mfu, "peak MiB": r["peak_mib"]})
    df = pd.DataFrame(rows)
    for peer in peers:
        base = df[(df.runner == peer) & df.get("samples/s", pd.Series(dtype=float)).notna()]
        if len(base):
            df[f"× {peer}"] = df["samples/s"] / float(base["samples/s"].iloc[0])
    reference = df[(df.runner == "ours") & df.get("trains all", pd.Series(dtype=bool)).eq(True)]
    if len(reference):  # our run that trains every weight, as the peers do
        df["× ours, all weights"] = df["samples/s"] / float(reference["samples/s"].iloc[0])
    return df


def ablation(specs: list[str], common: dict, device) -> pd.DataFrame:
    """For each method spec: every speed-up on, each off in turn, all off, and all on plus torch.compile."""
    names = [n for n in SPEEDUPS if device.type == "cuda" or n not in CUDA_ONLY]
    variants = ([("all on", (), False)] + [(f"no {n}", (n,), False) for n in names] +
                [("all off", tuple(sorted(SPEEDUPS)), False), ("all on + torch.compile", (), True)])
    rows = []
    for spec in specs:
        base = None
        for loop, ablate, compiled in variants:
            job = {**common, "runner": "ours", "method": spec, "ablate": list(ablate), "compile": compiled}
            r = _measure_logged(job, f"{spec} [{loop}]")
            if "error" in r:
                rows.append({"method": spec, "loop": loop, "error": r["error"]})
                continue
            rate = r["samples"] / r["seconds"]
            base = rate if not ablate and not compiled else base
            row = {"method": spec, "loop": loop, "samples/s": rate, "× all on": rate / base if base else None,
                   "real tokens/s": r["tokens"] / r["seconds"], "peak MiB": r["peak_mib"]}
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
    args = build_parser().parse_args(argv)
    if args.child:
        job = json.loads(Path(args.child).read_text())
        Path(args.child).write_text(json.dumps(run_child(job)))
        return 0
    try:
        return bench(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
