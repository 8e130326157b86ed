"""`python -m runners.bench`: our training loop against its Trainer twin, per method and model shape, on the same
device, data and samples; prints and writes samples/s, real tokens/s, MFU and HFU against the device's own measured
peak, peak memory and the ratios ours/twin. With `--ablate`, instead: what each speed-up of our loop buys, turned off
one at a time, and torch.compile. With `--profile`: where a step's time goes, per method (torch.profiler).

Each of our measurements is a run of the worker through compare's executor (its own process, so its peak memory is
its own), read from its record in `<results>/records/` (no comparison for `runners.report`); each twin
(runners.job.twin: `transformers.Trainer` training the model our run's method built) runs in its own process too, its
numbers kept in `<results>/records/twins/`."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import pandas as pd

from runners.analysis.bench_tables import markdown, twin_row, with_fp32_ratios
from runners.cli import warn_if_sigint_ignored
from runners.core.errors import UserError
from runners.core.files import write_text_atomic
from runners.core.signals import ExitCode, Stopped, stop_on_signals
from runners.data.shapes import SHAPES
from runners.execute.serial import SubprocessExecutor
from runners.job.twin import measure_twin
from runners.measure import environment as env
from runners.measure.environment import measurable
from runners.measure.peaks import (
    DATASHEET_TFLOPS,
    HFU_FORMULA,
    MFU_FORMULA,
    SHORT,
    SHORT_NAME,
    measure_peaks,
    peaks_line,
)
from runners.planning import plan
from runners.planning.bench import Bench, parse_samples, prepare
from runners.settings.speedups import SPEEDUPS
from runners.store.context import git_state, now, versions

Executor = SubprocessExecutor  # as in `runners.compare`: each run in its own process (tests swap in-process)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="hub id or local folder (a real checkpoint)")
    p.add_argument("--model-shape", help=f"comma-separated shapes built from their configs with random weights: "
                                         f"{', '.join(f'{k} ({v.title})' for k, v in SHAPES.items())}")
    p.add_argument("--tokenizer", default="gpt2", help="with --model-shape: hub id or folder of the tokenizer (GPT-2's "
                                                       "files alone will do); a shape's vocabulary grows to hold it")
    p.add_argument("--dataset", default="tweets")
    p.add_argument("--data-dir")
    p.add_argument("--max-length", type=int)
    p.add_argument("--samples", default="256", help="training samples per measurement: N, or N for every shape and "
                                                    "SHAPE=N for some, e.g. 256,qwen3=64 (default 256)")
    p.add_argument("--batch-size", type=int, default=32, help="the batch of our runs and their twins")
    p.add_argument("--methods", help="our runs, as method specs (see `runners.compare --list`); each gets its twin")
    p.add_argument("--ablate", action="store_true",
                   help="instead of the twins: each method with every speed-up on, with each turned off in turn, "
                        "with all off, and with torch.compile (its compile time apart)")
    p.add_argument("--with-fp32", action="store_true",
                   help="where the device autocasts to bf16: also each method in fp32 (`--ablate bf16`), with its "
                        "twin in fp32, each in its own row")
    p.add_argument("--profile", action="store_true",
                   help="instead of the twins: profile a few steps of each method in this process (torch.profiler) "
                        "and write where the time goes, top operators and their shares")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--peak-tflops", type=float, help="CUDA: the GPU's datasheet bf16 peak, beside the measured one "
                                                     "(default: H100 SXM's 989)")
    p.add_argument("--results", default="results/bench",
                   help="folder for the tables, and the runs' records in records/")
    return p


def bench(args: argparse.Namespace, command: str) -> int:
    if bool(args.model) == bool(args.model_shape):
        raise UserError("give one of --model or --model-shape (" + ", ".join(SHAPES) + ")")
    if not args.methods:
        raise UserError("give --methods (see python -m runners.compare --list)")
    specs = [m for m in args.methods.split(",") if m]
    names = [s for s in (args.model_shape or "").split(",") if s]
    if unknown := [s for s in names if s not in SHAPES]:
        raise UserError(f"unknown --model-shape {', '.join(unknown)}; the shapes are {', '.join(SHAPES)}")
    samples = parse_samples(args.samples, names)
    if (args.ablate or args.profile) and len(names) > 1:
        raise UserError("--ablate and --profile measure one model: give one --model-shape")
    device = env.resolve_device(args.device)
    info = env.device_info(device)
    out = Path(args.results)
    benches = [prepare(args, name, samples.get(name, samples[None])) for name in (names or [None])]
    header = (f"Data: {args.dataset} from `{benches[0].splits.identity['source']}`; device: {device.type} "
              f"({info['name']}, {info.get('threads', 1)} threads); our loop's precision here: "
              f"{SHORT[info['compute_dtype']]} ({info['bf16_reason']})\n\n" +
              "\n".join(f"- **{b.title}**: {b.describe}" for b in benches))
    if args.profile:
        from runners.job.profiling import profile_methods

        b = benches[0]
        table = profile_methods(specs, b.model["path"], tokens=b.tokens, num_labels=b.splits.num_labels,
                                pad_id=b.pad_id, batch_size=args.batch_size, max_length=b.max_length, device=device)
        return _write(out, "profile-" + device.type, header, command, table, None)
    if args.ablate:
        with Executor() as executor:
            df = ablation(specs, lambda spec, what, **loop: _ours(executor, benches[0], spec, what, args, out, **loop),
                          device)
        skipped = [n for n in SPEEDUPS if n not in measurable(device)]
        header += ("\n\nEach speed-up of our loop turned off in turn (`--ablate NAME` in `runners.compare`)" +
                   (f"; {' and '.join(skipped)} change{'s' * (len(skipped) == 1)} nothing on this device, so not "
                    f"measured here" if skipped else "") +
                   "; break-even: the samples after which torch.compile's compile time is paid back")
        return _write(out, f"{args.dataset}-{device.type}-ablation", header, command, markdown(df), df)
    fp32_too = args.with_fp32 and env.precision(device).autocast
    both = (True, False) if fp32_too else (True,)  # bf16 on (where the device has it), then off
    dtypes = sorted({env.precision(device, bf16).name for bf16 in both})  # only the precisions the rows run in
    print(f"measuring the device's peak in {', '.join(SHORT[d] for d in dtypes)} (dense matmuls) ...", flush=True)
    peaks = measure_peaks(device, dtypes, log=lambda line: print(line, flush=True))
    datasheet = ({**DATASHEET_TFLOPS, **({"bfloat16": args.peak_tflops} if args.peak_tflops else {})}
                 if device.type == "cuda" else None)
    rows = []
    with Executor() as executor:
        for b in benches:
            for spec in specs:
                for bf16 in both:
                    label = spec + ("" if bf16 else " [no bf16]")
                    ablate = () if bf16 else ("bf16",)
                    ours, job = _ours(executor, b, spec, f"{b.name or 'model'} {label}", args, out, ablate=ablate)
                    twin = _twin(job, out) if "error" not in ours else {"error": "not run: ours failed"}
                    rows.append(twin_row(b.title, label, ours, twin, b.config, peaks, datasheet))
    df = with_fp32_ratios(pd.DataFrame(rows)) if fp32_too else pd.DataFrame(rows)
    header += (f"\n\n{peaks_line(peaks)}.\n\nMFU: {MFU_FORMULA}; × real tokens/s ÷ the measured peak of the precision "
               f"the row ran in" + (", and ÷ the datasheet peak (MFU % datasheet: " +
                                    ", ".join(f"{SHORT[k]} {v:g} TFLOP/s" for k, v in datasheet.items()) + ")"
                                    if datasheet else "") + f". HFU: {HFU_FORMULA}, ÷ the same measured peak. "
               "Twin: `transformers.Trainer` training the model our run's method built (the same batch, precision, "
               "examples in the same order, optimizer and parameter groups, warm-up and clipping; `same batches`: "
               "the very batches too); × twin: our samples/s over the twin's; peak × twin: our peak memory over "
               "the twin's (each its own process's peak resident set on the CPU, both on glibc's default allocator; "
               "CUDA's max allocated on a GPU: docs/performance.md, \"Peak memory\").")
    return _write(out, f"{args.dataset}-{device.type}", header, command, markdown(df), df)


def _ours(executor, b: Bench, spec: str, what: str, args, out: Path, **loop) -> tuple[dict, object]:
    """One of our runs, by the worker through the executor, as `runners.compare` runs it (no serve stage: its seconds
    would lengthen the bench and measure nothing it reports): its record's measurements and precision, or its
    error; and its job."""
    from runners.settings.config import RunConfig

    cfg = RunConfig(method=spec, seed=0, dataset=b.source_name, data_dir=args.data_dir,
                    model=args.model or b.model["path"], budget=f"{b.samples}samples", batch_size=args.batch_size,
                    max_length=b.max_length, eval_limit=64, checkpoints=(1.0,), device=args.device, **loop)
    job = plan.job_for(b.common, cfg, out / "records", stages=("train", "evaluate"))
    print(f"ours {what}: measuring {b.samples} samples ...", flush=True)
    record = executor.run(job)
    if not record.ok:
        print(f"  failed: {record.status.value}: {record.error}", file=sys.stderr)
        return {"error": f"{record.status.value}: {record.error}"}, job
    precision = env.precision(env.resolve_device(args.device), record.config.bf16(env.resolve_device(args.device)))
    return {**record.measurements.model_dump(), "batch_size": record.config.batch_size,
            "compute_dtype": SHORT_NAME[precision.dtype]}, job


def _twin(job, out: Path) -> dict:
    """The run's Trainer twin, its numbers kept beside our records."""
    print("  its Trainer twin ...", flush=True)
    twin = measure_twin(job)
    if "error" in twin:
        print(f"  twin failed: {twin['error']}", file=sys.stderr)
    folder = out / "records" / "twins"
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / f"{job.run_id}.json", json.dumps({"run_id": job.run_id, **twin}, indent=1))
    return twin


def _write(out: Path, stem: str, header: str, command: str, table: str, df: pd.DataFrame | None) -> int:
    context = f"Command: `{command}`\nVersions: {versions()}; git {git_state()}; {now()}"
    write_text_atomic(out / f"{stem}.md", f"{header}\n\n{context}\n\n{table}\n")
    if df is not None:
        write_text_atomic(out / f"{stem}.csv", df.to_csv(index=False))
    print(f"\n{header}\n\n{table}\n\nWritten: {out / stem}.md" + (", .csv" if df is not None else "") +
          (f"; our runs' records in {out / 'records'}/" if df is not None else ""))
    return 0


def ablation(specs: list[str], ours, device) -> pd.DataFrame:
    """For each method spec: every speed-up on, each off in turn, all off, and all on plus torch.compile."""
    names = measurable(device)
    variants = ([("all on", (), False)] + [(f"no {n}", (n,), False) for n in names] +
                [("all off", tuple(sorted(SPEEDUPS)), False), ("all on + torch.compile", (), True)])
    rows = []
    for spec in specs:
        base = None
        for loop, ablate, compiled in variants:
            r, _ = ours(spec, f"{spec} [{loop}]", ablate=ablate, compile=compiled)
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
