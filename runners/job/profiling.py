"""`python -m runners.bench --profile`: where our loop's training step spends its time, per method (torch.profiler).

Each method trains a few steps of the real data through `runners.job.loop.train`, as a run does (every speed-up on), in
the bench's process; the steps after a warm-up are profiled. Operators are ranked by self time (time inside the
operator, not its children, so the shares add up to the step), and grouped into kinds by name.
"""
from __future__ import annotations

import time

import torch
from tabulate import tabulate

WAIT, WARMUP, ACTIVE = 1, 1, 3  # steps skipped, profiled but discarded, profiled
TOP = 10  # operators listed per method

# (kind, test on the lower-cased operator name), the first that matches wins
KINDS = [
    ("outside operators (Python, the loop)", lambda n: n.startswith("profilerstep")),
    ("4-bit dequantize", lambda n: "bitsandbytes" in n or "dequantize" in n or "4bit" in n),
    ("matmul", lambda n: n in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm") or "matmul" in n
     or "gemm" in n or "linear" in n),
    ("attention (SDPA)", lambda n: "scaled_dot_product" in n or "flash_attention" in n),
    ("layer norm", lambda n: "layer_norm" in n),
    ("GELU", lambda n: "gelu" in n or n in ("aten::tanh", "aten::pow", "aten::tanh_backward", "aten::pow_")),
    ("optimizer and clipping", lambda n: "adam" in n or "foreach" in n or "vector_norm" in n),
    ("dtype casts and copies", lambda n: n in ("aten::copy_", "aten::_to_copy", "aten::to", "aten::clone")),
    ("embedding", lambda n: "embedding" in n),
    ("dropout", lambda n: "dropout" in n or "bernoulli" in n),
    ("softmax, loss", lambda n: "softmax" in n or "nll_loss" in n or "cross_entropy" in n),
    ("elementwise", lambda n: any(k in n for k in ("add", "mul", "div", "sub", "fill", "zero", "where", "masked",
                                                   "sum", "neg", "sqrt", "rsqrt", "exp", "clamp", "cat"))),
]


def kind_of(name: str) -> str:
    n = name.lower()
    return next((kind for kind, test in KINDS if test(n)), "other")


def profile_methods(specs: list[str], model_dir: str, *, tokens, num_labels: int, pad_id: int,
                    batch_size: int, max_length: int, device: torch.device) -> str:
    """Profile each method spec's training steps; return the findings as markdown."""
    sections = [f"Each method: {WAIT + WARMUP + ACTIVE} steps of batch {batch_size} (length-grouped real data, "
                f"dynamic padding, every speed-up on) through the loop; the last {ACTIVE} profiled. Self time: time "
                f"inside an operator, its children excluded, so the shares add up to the profiled step."]
    for spec in specs:
        print(f"{spec}: profiling {WAIT + WARMUP + ACTIVE} steps ...", flush=True)
        sections.append(_profile(spec, model_dir, tokens, num_labels, pad_id, batch_size, max_length,
                                 device))
    return "\n\n".join(sections)


def _profile(spec, model_dir, tokens_path, num_labels, pad_id, batch_size, max_length, device) -> str:
    from methods import ModelContext, parse_spec
    from runners.data.batches import load_tokenized
    from runners.job.loop import train
    from runners.measure import environment as env
    from runners.measure import flops
    from runners.settings.config import RunConfig

    data = load_tokenized(tokens_path)
    data["validation"] = _head(data["validation"], 8)  # the loop's closing evaluation: next to nothing, unprofiled
    method = parse_spec(spec).method
    torch.manual_seed(0)
    model = method.build(ModelContext(model_dir, num_labels, pad_id, device, compute_dtype=env.precision(device).name))
    cfg = RunConfig(method=spec, seed=0, budget=f"{WAIT + WARMUP + ACTIVE}steps", batch_size=batch_size,
                    max_length=max_length, checkpoints=(1.0,), device=device.type)
    kept = _kept(model, method, data["train"], cfg, pad_id, device)
    activities = [torch.profiler.ProfilerActivity.CPU] + \
        ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    stamps = []
    with torch.profiler.profile(activities=activities,
                                schedule=torch.profiler.schedule(wait=WAIT, warmup=WARMUP, active=ACTIVE)) as prof:
        hook = method.on_step

        def on_step(m, progress):  # the loop's per-step hook: one profiler step per optimizer step
            hook(m, progress)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())
            prof.step()

        method.on_step = on_step
        train(model, method, data, cfg, lr=method.params.lr, pad_id=pad_id, num_labels=num_labels, device=device,
              flops=flops.measure(model, device), quiet=True)
    wall = (stamps[-1] - stamps[-1 - ACTIVE]) / ACTIVE
    cuda = device.type == "cuda"
    events = [(e.key, (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e3 / ACTIVE,
               e.count / ACTIVE) for e in prof.key_averages()]
    events = sorted([e for e in events if e[1] > 0], key=lambda e: -e[1])
    total = sum(ms for _, ms, _ in events)
    top = [(name, kind_of(name), f"{ms:,.1f}", f"{100 * ms / total:.1f}", f"{calls:g}")
           for name, ms, calls in events[:TOP]]
    kinds: dict[str, float] = {}
    for name, ms, _ in events:
        kinds[kind_of(name)] = kinds.get(kind_of(name), 0.0) + ms
    by_kind = [(k, f"{ms:,.1f}", f"{100 * ms / total:.1f}") for k, ms in sorted(kinds.items(), key=lambda x: -x[1])]
    precision = env.precision(device)
    clock = "device" if cuda else "CPU"
    return (f"### {spec} ({str(precision.dtype).removeprefix('torch.')}, {env.count_parameters(model)[0]:,} "
            f"trainable)\n\n{wall:.2f} s per step (wall, under the profiler); {clock} self time profiled "
            f"{total / 1e3:.2f} s per step.\n\n" +
            tabulate(by_kind, headers=["kind", "ms/step", "share %"], tablefmt="github", disable_numparse=True) +
            "\n\n" + tabulate(top, headers=["operator", "kind", "ms/step", "share %", "calls/step"],
                              tablefmt="github", disable_numparse=True) + "\n\n" + kept)


def _kept(model, method, split, cfg, pad_id: int, device: torch.device) -> str:
    """What the forward of the loop's first batch (its longest: the step at the run's peak) keeps for backward, by
    module (runners.measure.saved), as markdown."""
    from runners.data.batches import Collator, batch_stream
    from runners.job.loop import autocast_for
    from runners.measure.saved import by_kind, kept_for_backward

    first = next(batch_stream(split.lengths, cfg.batch_size, cfg.seed, cfg.speedup("bucketing")))
    batch = Collator(split, pad_id, method.padding_side, device)(first)
    kept = kept_for_backward(model, batch, autocast_for(device, cfg.bf16(device)))
    rows = [(module, dtype, f"{mib:,.1f}", f"{share:.1f}") for module, dtype, mib, share in by_kind(kept)]
    return (f"Kept for backward by the forward of the first batch ({tuple(batch['input_ids'].shape)}, the longest): "
            f"{sum(kept.values()) / 2 ** 20:,.0f} MiB\n\n" +
            tabulate(rows, headers=["module", "dtype", "MiB", "share %"], tablefmt="github", disable_numparse=True))


def _head(split, n: int):
    """The first `n` examples of a tokenized split."""
    from runners.data.batches import TokenizedSplit

    n = min(n, len(split))
    return TokenizedSplit(split.ids[: int(split.offsets[n])], split.offsets[: n + 1].clone(), split.labels[:n])
