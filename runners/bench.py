"""`python -m runners.bench`: our training loop against `transformers.Trainer` peers on the same device, data and
number of samples; prints and writes samples/s, real tokens/s, MFU and HFU against the device's own measured peak,
peak memory and the ratios ours/peer. With `--ablate`, instead: what each speed-up of our loop buys, turned off one
at a time, and torch.compile. With `--profile`: where a step's time goes, per method (torch.profiler).

Each of our measurements is a run of `runners.job.worker` through the executor `runners.compare` uses (its own process,
so its peak memory is its own), read from the run's record, kept in `<results>/records/` (not `runs/`: they are no
comparison for `runners.report`); each peer runs in its own process too.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tabulate import tabulate

from runners.cli import warn_if_sigint_ignored
from runners.core.errors import UserError
from runners.core.files import write_text_atomic
from runners.core.signals import ExitCode, Stopped, stop_on_signals
from runners.execute.serial import SubprocessExecutor
from runners.job.peers import PeerJob, measure_peer
from runners.measure import environment as env
from runners.measure.environment import measurable
from runners.planning import plan
from runners.settings.speedups import SPEEDUPS
from runners.store.context import git_state, now, versions

# Where the runs execute, as in `runners.compare`: each in its own process. The one seam to swap (tests run in-process).
Executor = SubprocessExecutor
# The device's own limit: the best of `PEAK_TRIES` timed square matmuls at each size (FLOPs 2·n³), per dtype.
PEAK_SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192, 16384)}
PEAK_TRIES = 5
# Datasheet peaks (dense, TFLOP/s), beside the measured ones on CUDA: H100 SXM; --peak-tflops for another GPU's bf16.
DATASHEET_TFLOPS = {"bfloat16": 989.0, "float32": 67.0}
SHORT = {"bfloat16": "bf16", "float32": "fp32"}
SHORT_NAME = {torch.float32: "float32", torch.bfloat16: "bfloat16"}


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


# The one MFU convention: model FLOPs of the standard formula (Kaplan et al. 2020; PaLM's MFU), per real token.
MFU_FORMULA = ("model FLOPs per real token by the standard formula: 6·N + 12·n_layer·d·T̄ when every weight trains; "
               "4·N + 12·n_layer·d·T̄ when the backward runs through the frozen body to train adapters (no weight "
               "gradients for frozen weights; the adapters' own FLOPs, under 2%, left out); 2·N + 4·n_layer·d·T̄ when "
               "it does not (head); N = 12·n_layer·d² the body's matmul weights, T̄ the mean real length")
HFU_FORMULA = ("the FLOPs computed, as torch's counter measures them (padding, recomputation of checkpointed "
               "activations, flash attention's backward recompute: 14·n_layer·d·T̄ for 12) per second; for the Trainer "
               "peers, our full fine-tune's counted FLOPs per padded shape applied to their batches")
PASSES = {"all": (6, 12), "adapters": (4, 12), "forward": (2, 4)}  # (× N, × n_layer·d·T̄) by what backward computes


def model_flops_per_token(config, mean_length: float, backward: str = "all") -> float:
    """Model FLOPs per real token (MFU_FORMULA). `backward`: "all" (every weight trains), "adapters" (through the
    frozen body, to small adapters) or "forward" (no backward through the body)."""
    d, layers = config.n_embd, config.n_layer
    n, attention = PASSES[backward]
    return n * matmul_weights(config) + attention * layers * d * mean_length


def matmul_weights(config) -> int:
    return config.n_layer * 12 * config.n_embd ** 2  # c_attn 3d², attn c_proj d², c_fc 4d², mlp c_proj 4d²


def backward_kind(r: dict, config) -> str:
    """What a row's backward computes, from what it trains and its counted FLOPs per padded token (a backward
    through the body counts at least 4·N; a forward alone 2·N)."""
    if r["trainable_params"] == r["total_params"]:
        return "all"
    return "adapters" if r["flop_model"]["linear"] > 3 * matmul_weights(config) else "forward"


def measure_peaks(device: torch.device, sizes: tuple[int, ...] | None = None, tries: int = PEAK_TRIES) -> dict:
    """The device's own limit: per dtype, the best dense matmul rate (FLOP/s) over square sizes, best of `tries` each
    after a warm-up; {"float32": {"peak": r, "by_size": {n: r}}, "bfloat16": ...}."""
    sizes = sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"])
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        by_size = {}
        for n in sizes:
            a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
            out = torch.mm(a, b)  # warm-up: allocation and the kernel's choice
            best = float("inf")
            for _ in range(tries):
                _sync(device)
                start = time.perf_counter()
                torch.mm(a, b, out=out)
                _sync(device)
                best = min(best, time.perf_counter() - start)
            by_size[n] = 2 * n ** 3 / best
        peaks[SHORT_NAME[dtype]] = {"peak": max(by_size.values()), "by_size": by_size}
    return peaks



def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peaks_line(peaks: dict) -> str:
    sizes = next(iter(peaks.values()))["by_size"]
    return (f"the device's limit, measured at the start of this run (best dense matmul, square sizes "
            f"{', '.join(map(str, sizes))}, best of {PEAK_TRIES} each): " +
            ", ".join(f"{SHORT[k]} {v['peak'] / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()) +
            f" (bf16/fp32 {peaks['bfloat16']['peak'] / peaks['float32']['peak']:.2f}×)")


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
    return _write(out, stem, header, command, _markdown(df), df)


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


FORMATS = {"samples/s": "{:.3g}", "real tokens/s": "{:,.0f}", "MFU %": "{:.1f}", "HFU %": "{:.1f}",
           "MFU % datasheet": "{:.1f}", "peak MiB": "{:,.0f}",
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
