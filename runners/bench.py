"""`python -m runners.bench`: our training loop against `transformers.Trainer` peers on the same device, data and
number of samples; prints and writes samples/s, real tokens/s, MFU and HFU against the device's own measured peak,
peak memory and the ratios ours/peer. With `--ablate`, instead: what each speed-up of our loop buys, turned off one
at a time, and torch.compile. With `--profile`: where a step's time goes, per method (torch.profiler).

Each of our measurements is a run of the worker through compare's executor (its own process, so its peak memory is
its own), read from its record in `<results>/records/` (no comparison for `runners.report`); each peer runs in its
own process too."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd
import torch

from runners.analysis.bench_tables import markdown
from runners.cli import warn_if_sigint_ignored
from runners.core.errors import UserError
from runners.core.files import write_text_atomic
from runners.core.signals import ExitCode, Stopped, stop_on_signals
from runners.data.shapes import gpt2_shape
from runners.execute.serial import SubprocessExecutor
from runners.job.peers import PeerJob, measure_peer
from runners.measure import environment as env
from runners.measure.environment import measurable
from runners.measure.peaks import (
    DATASHEET_TFLOPS,
    HFU_FORMULA,
    MFU_FORMULA,
    PEAK_TRIES,
    SHORT,
    SHORT_NAME,
    backward_kind,
    measure_peaks,
    model_flops_per_token,
    peaks_line,
)
from runners.planning import plan
from runners.settings.speedups import SPEEDUPS
from runners.store.context import git_state, now, versions

Executor = SubprocessExecutor  # as in `runners.compare`: each run in its own process (tests swap in-process)


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
    p.add_argument("--with-fp32", action="store_true",
                   help="where the device autocasts to bf16: also each method and the tuned Trainer in fp32 (our "
                        "runs with `--ablate bf16`), each in its own row")
    p.add_argument("--profile", action="store_true",
                   help="instead of the peers: profile a few steps of each method in this process (torch.profiler) "
                        "and write where the time goes, top operators and their shares")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--peak-tflops", type=float, help="CUDA: the GPU's datasheet bf16 peak, beside the measured one "
                                                     "(default: H100 SXM's 989)")
    p.add_argument("--results", default="results/bench",
                   help="folder for the tables, and the runs' records in records/")
    return p


def bench(args: argparse.Namespace, command: str) -> int:
    from transformers import AutoConfig

    from runners.data.batches import default_cache_dir, tokenize_cached
    from runners.data.models import load_tokenizer, resolve_model
    from runners.data.sources import resolve_source
    from runners.data.splits import load_splits
    from runners.job.peers import PEERS
    from runners.settings.config import RunConfig

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
    info = env.device_info(device)
    header = (f"Model: {model_name} (`{model_dir}`); data: {args.dataset} from "
              f"`{splits.identity['source']}`, max_length {max_length}; {args.samples} training samples per "
              f"measurement; device: {device.type} ({info['name']}, {info.get('threads', 1)} threads); our loop's "
              f"precision here: {SHORT[info['compute_dtype']]} ({info['bf16_reason']})")
    out = Path(args.results)
    if args.profile:
        from runners.job.profiling import profile_methods

        table = profile_methods(specs, model_dir, tokens=tokens, num_labels=splits.num_labels,
                                pad_id=tokenizer.pad_token_id, batch_size=args.batch_size, max_length=max_length,
                                device=device)
        return _write(out, "profile-" + device.type, header, command, table, None)
    # Our runs are the worker's, as `runners.compare` would run them with these settings.
    common = plan.common_job(model, splits, tokenizer.pad_token_id, tokens, command, quiet=True)
    settings = dict(seed=0, dataset=source.name, data_dir=args.data_dir, model=args.model or model_dir,
                    budget=f"{args.samples}samples", batch_size=args.batch_size, max_length=max_length,
                    eval_limit=64, checkpoints=(1.0,), device=args.device)
    peer_job = dict(tokens=str(tokens), model_dir=model_dir, num_labels=splits.num_labels,
                    pad_id=tokenizer.pad_token_id, samples=args.samples, max_length=max_length, device=args.device)
    with Executor() as executor:
        def ours(spec: str, what: str, **loop) -> dict:
            cfg = RunConfig(method=spec, **settings, **loop)
            # no serve stage: its seconds would lengthen the bench and measure nothing it reports
            job = plan.job_for(common, cfg, out / "records", stages=("train", "evaluate"))
            return _logged(what, args.samples, lambda: measure_ours(executor, job, device))

        def peer(name: str, bf16: bool = True) -> dict:
            return _logged(f"{name} (all weights{'' if bf16 else ', fp32'})", args.samples,
                           lambda: measure_peer(PeerJob(**peer_job, peer=name, bf16=bf16)))

        if args.ablate:
            df = ablation(specs, ours, device)
            skipped = [n for n in SPEEDUPS if n not in measurable(device)]
            header += ("; each speed-up of our loop turned off in turn (`--ablate NAME` in `runners.compare`)" +
                       (f"; {' and '.join(skipped)} change{'s' * (len(skipped) == 1)} nothing on this device, so "
                        f"not measured here" if skipped else "") +
                       "; break-even: the samples after which torch.compile's compile time is paid back")
            stem = f"{args.dataset}-{device.type}-ablation"
        else:
            print(f"measuring the device's peak (dense matmuls, {PEAK_TRIES} tries per size) ...", flush=True)
            peaks = measure_peaks(device)
            print(f"  {peaks_line(peaks)}", flush=True)
            fp32_too = args.with_fp32 and env.precision(device).autocast
            datasheet = ({**DATASHEET_TFLOPS, **({"bfloat16": args.peak_tflops} if args.peak_tflops else {})}
                         if device.type == "cuda" else None)
            df = against_peers(specs, peers, ours, peer, config, peaks, fp32_too, datasheet)
            header += (f"; {peaks_line(peaks)}. MFU: {MFU_FORMULA}; × real tokens/s ÷ the measured peak of the "
                       f"precision the row ran in" + (", and ÷ the datasheet peak (MFU % datasheet: " +
                       ", ".join(f"{SHORT[k]} {v:g} TFLOP/s" for k, v in datasheet.items()) + ")" if datasheet
                                                      else "") + f". HFU: {HFU_FORMULA}, ÷ the same measured peak")
            stem = f"{args.dataset}-{device.type}"
    return _write(out, stem, header, command, markdown(df), df)


def _write(out: Path, stem: str, header: str, command: str, table: str, df: pd.DataFrame | None) -> int:
    context = f"Command: `{command}`\nVersions: {versions()}; git {git_state()}; {now()}"
    write_text_atomic(out / f"{stem}.md", f"{header}\n\n{context}\n\n{table}\n")
    if df is not None:
        write_text_atomic(out / f"{stem}.csv", df.to_csv(index=False))
    print(f"\n{header}\n\n{table}\n\nWritten: {out / stem}.md" + (", .csv" if df is not None else "") +
          (f"; our runs' records in {out / 'records'}/" if df is not None else ""))
    return 0


def measure_ours(executor, job: dict, device: torch.device) -> dict:
    """One of our runs, by the worker through the executor, as `runners.compare` runs it: its record's measurements
    (training time excludes loading, compiling and evaluation) and the precision it computed in, or the error it
    ended with."""
    record = executor.run(job)
    if not record.ok:
        return {"error": f"{record.status.value}: {record.error}"}
    precision = env.precision(device, record.config.bf16(device))  # as the worker's loop decided it
    return {**record.measurements.model_dump(), "batch_size": record.config.batch_size,
            "compute_dtype": SHORT_NAME[precision.dtype]}


def _logged(what: str, samples: int, measure) -> dict:
    print(f"{what}: measuring {samples} samples ...", flush=True)
    r = measure()
    if "error" in r:
        print(f"  failed: {r['error']}", file=sys.stderr)
    return r


def against_peers(specs: list[str], peers: list[str], ours, peer, config, peaks: dict, fp32_too: bool = False,
                  datasheet: dict | None = None) -> pd.DataFrame:
    """One row per method spec of ours (and its fp32 twin with `fp32_too`) and per peer (the tuned one's fp32 twin
    too), with MFU and HFU against the measured peak of the row's precision and each one's speed relative to each
    peer's."""
    from runners.job.peers import PEERS
    from runners.measure.flops import FlopModel

    both = (True, False) if fp32_too else (True,)  # bf16 on (where the device has it), then off
    runs = [("ours", m, bf16) for m in specs for bf16 in both]
    runs += [(p, None, bf16) for p in peers for bf16 in (both if PEERS[p]["tuned"] else (True,))]
    rows, full_flops = [], None
    for runner, method, bf16 in runs:
        if method:
            r = ours(method, f"ours {method}" + ("" if bf16 else " [no bf16]"), ablate=() if bf16 else ("bf16",))
        else:
            r = peer(runner, bf16)
        if "error" in r:
            rows.append({"runner": runner, "method": method, "error": r["error"]})
            continue
        dtype = r["compute_dtype"]
        kind = "all" if not method else backward_kind(r, config)
        model_rate = model_flops_per_token(config, r["tokens"] / r["samples"], kind) * r["tokens_per_second"]
        if method and kind == "all" and full_flops is None:
            full_flops = FlopModel(**r["flop_model"])  # the peers compute what our full fine-tune computes
        hardware = (r["flops"] if method else sum(full_flops.step(b, w) for b, w in r["shapes"]) if full_flops
                    else None)
        label = (method + ("" if bf16 else " [no bf16]")) if method else "all weights (Trainer)"
        rows.append({"runner": runner, "method": label, "precision": SHORT[dtype], "trains all": kind == "all",
                     "batch": r["batch_size"], "samples/s": r["samples_per_second"],
                     "real tokens/s": r["tokens_per_second"], "MFU %": 100 * model_rate / peaks[dtype]["peak"],
                     "HFU %": None if hardware is None else
                     100 * hardware / r["train_seconds"] / peaks[dtype]["peak"],
                     **({"MFU % datasheet": 100 * model_rate / (datasheet[dtype] * 1e12)} if datasheet else {}),
                     "peak MiB": r["peak_memory_mib"]})
    df = pd.DataFrame(rows)
    rate = df.get("samples/s", pd.Series(float("nan"), index=df.index))
    for i in df.index[(df.runner != "ours") & rate.notna()]:  # a ratio column per peer row, its precision named
        df[f"× {df.runner[i]} ({df.precision[i]})"] = rate / rate[i]
    reference = df.index[(df.runner == "ours") & df.get("trains all", pd.Series(False, index=df.index)).eq(True)]
    if len(reference):  # our run that trains every weight, as the peers do
        df["× ours, all weights"] = rate / rate[reference[0]]
    if fp32_too:  # each bf16 row against the same runner and method in fp32
        twin = {(r.runner, r.method.removesuffix(" [no bf16]")): r["samples/s"] for _, r in df.iterrows()
                if r.get("precision") == "fp32" and pd.notna(r.get("samples/s"))}
        df["× own fp32"] = [r["samples/s"] / twin[(r.runner, r.method)] if r.get("precision") == "bf16" and
                            (r.runner, r.method) in twin else None for _, r in df.iterrows()]
    return df


def ablation(specs: list[str], ours, device) -> pd.DataFrame:
    """For each method spec: every speed-up on, each off in turn, all off, and all on plus torch.compile."""
    names = measurable(device)
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
            row = {"method": spec, "loop": loop, "precision": SHORT[r["compute_dtype"]], "samples/s": rate,
                   "× all on": rate / base if base else None, "real tokens/s": r["tokens_per_second"],
                   "peak MiB": r["peak_memory_mib"]}
            if compiled and base:
                row["compile s"] = r["compile_seconds"]
                saved = 1 / base - 1 / rate  # seconds saved per sample
                row["break-even samples"] = r["compile_seconds"] / saved if saved > 0 else float("inf")
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    warn_if_sigint_ignored()
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
