"""`python -m runners.sweep_estimate`: how long a sweep (methods × learning rates × seeds × budgets) takes on 1, 8
or 64 devices, from the per-run times measured in an experiment's records.

What it assumes, printed with the table: every run takes what a run of its method took in the records (training,
evaluation, compilation and serving seconds), its training part scaled linearly with the budget's multiple; each run
also pays the measured fixed cost of a run (process start, loading, the executor: `--overhead-s`); methods beyond
those measured take the measured ones' times in turn; runs are independent and each holds one device, the longest
started first (what `--workers N` and Ray do with a sorted queue). No GPU time is invented: the unit is whatever
device the records ran on, and the speed-up column is what carries over to another device.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import sys
from pathlib import Path

from runners.core.errors import UserError
from runners.store.records import load_records


def makespan(seconds: list[float], devices: int) -> float:
    """The wall time of independent runs on `devices` slots, longest first, each to the slot free soonest."""
    slots = [0.0] * max(1, devices)
    for s in sorted(seconds, reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + s)
    return max(slots)


def run_seconds(records) -> dict[str, tuple[float, float]]:
    """Per method: (mean training seconds, mean seconds of the rest: evaluation, compilation, serving)."""
    by_method: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if not r.ok or r.measurements is None or r.method.kind != "method":
            continue
        m = r.measurements
        rest = m.eval_seconds + m.compile_seconds + (r.serving.seconds if r.serving else 0.0)
        by_method.setdefault(r.config.method, []).append((m.train_seconds, rest))
    return {k: (sum(t for t, _ in v) / len(v), sum(o for _, o in v) / len(v)) for k, v in by_method.items()}


def sweep(per_method: dict[str, tuple[float, float]], methods: int, rates: int, seeds: int,
          budgets: tuple[float, ...], overhead: float) -> list[float]:
    """Every run's seconds in the sweep."""
    times = list(itertools.islice(itertools.cycle(per_method.values()), methods))
    return [train * k + rest + overhead for train, rest in times for k in budgets for _ in range(rates * seeds)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.sweep_estimate", description=__doc__.splitlines()[0])
    p.add_argument("results", help="a results folder (its <dataset>/runs/ holds the records)")
    p.add_argument("--dataset", default="tweets")
    p.add_argument("--experiment", help="only this experiment id's records (default: all in the folder)")
    p.add_argument("--methods", type=int, default=16)
    p.add_argument("--rates", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budgets", default="1,4,16", help="the budgets as multiples of the records' (default 1,4,16)")
    p.add_argument("--devices", default="1,8,64")
    p.add_argument("--overhead-s", type=float, default=0.0, help="measured fixed seconds per run (start, loading)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        records = [r for r in load_records(Path(args.results), args.dataset)
                   if args.experiment in (None, r.experiment_id)]
        per_method = run_seconds(records)
        if not per_method:
            raise UserError(f"no ok method runs in {args.results}" + (f" of experiment {args.experiment}"
                                                                   if args.experiment else ""))
        budgets = tuple(float(x) for x in args.budgets.split(","))
        devices = [int(x) for x in args.devices.split(",")]
    except (UserError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = sweep(per_method, args.methods, args.rates, args.seeds, budgets, args.overhead_s)
    one = makespan(runs, 1)
    print(f"{args.methods} methods × {args.rates} rates × {args.seeds} seeds × budgets {args.budgets} (× the "
          f"records') = {len(runs)} runs; per-run times from {len(records)} records of "
          f"{', '.join(per_method)}, + {args.overhead_s:g} s each")
    print("| devices | wall time | speed-up | efficiency |\n|---|---|---|---|")
    for d in devices:
        wall = makespan(runs, d)
        print(f"| {d} | {_hms(wall)} | {one / wall:.1f}× | {one / wall / d:.0%} |")
    return 0


def _hms(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


if __name__ == "__main__":
    sys.exit(main())
