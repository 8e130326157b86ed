"""Before training: how long the command will take; after it, how that compared with the wall time it took.

A run costs its training (the time budget itself, or the budget in steps at a measured step time:
runners.planning.probe) plus a fixed cost: its process starting, the model loading, the FLOPs probe, evaluation at each
checkpoint and on test, the serve stage. The fixed cost comes from earlier runs on this machine (their wall time less
their training seconds, kept in the cache folder), else from what the probe measured. Runs go `slots` at a time, in
waves. """
from __future__ import annotations

import importlib
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runners.job.spec import Shared

HISTORY = "estimate-history.json"  # in the cache folder (--cache-dir)
KEEP = 20  # fixed costs kept per key, the most recent: their median follows a machine whose load changes


@dataclass(frozen=True)
class Estimate:
    """The wall time of a command's runs. `phases`: how many runs each phase has, a phase ending before the next
    starts (the learning-rate search's grid, then the reported runs); each run `train_s` of training and `fixed_s`
    more, `slots` at a time. Where a search may extend its grid: up to `extension_rounds` more phases of
    `extension_runs` runs each."""

    phases: tuple[int, ...]
    train_s: float
    fixed_s: float
    slots: int = 1
    extension_rounds: int = 0
    extension_runs: int = 0
    searched: int = 0  # how many of the runs are search trials
    train_how: str = ""  # where train_s came from, in words
    fixed_how: str = ""  # where fixed_s came from, in words

    @property
    def runs(self) -> int:
        return sum(self.phases)

    def waves(self, runs: int) -> int:
        """Rounds of `slots` runs at once (3 runs on 2 slots take 2 rounds: runs are not split)."""
        return math.ceil(runs / self.slots)

    @property
    def seconds(self) -> float:
        return sum(self.waves(n) for n in self.phases) * (self.train_s + self.fixed_s)

    @property
    def upper(self) -> float:
        """The wall time if every search extends its grid as far as it may."""
        return self.seconds + self.extension_rounds * self.waves(self.extension_runs) * (self.train_s + self.fixed_s)

    def line(self) -> str:
        """One line for the terminal, before the first run."""
        slots = f", {self.slots} at a time" if self.slots > 1 else ""
        upper = f", up to {duration(self.upper)} if the searches extend" if self.upper > self.seconds else ""
        searched = f"{self.searched} of them search trials; " if self.searched else ""
        return (f"estimate: {self.runs} run(s) × ({duration(self.train_s)} training + {duration(self.fixed_s)} "
                f"start, loading and evaluation){slots} ≈ {duration(self.seconds)} in all{upper} ({searched}"
                f"training: {self.train_how}; the rest: {self.fixed_how})")


def fixed_from_probe(imports_s: float, load_s: float, flops_s: float, row_s: float, rows: int) -> float:
    """A run's fixed cost without history: its imports, the model's loading, the FLOPs probe, and `rows` evaluated
    rows at `row_s` seconds each (what this process measured of each)."""
    return imports_s + load_s + flops_s + rows * row_s


def eval_rows(validation: int, test: int, checkpoints: int, test_each_checkpoint: bool, serving_rows: int) -> int:
    """The rows one run evaluates: validation at every checkpoint (and test too where asked), test once at the end,
    and what the serve stage sends through the model."""
    return validation * checkpoints + test * (1 + (checkpoints if test_each_checkpoint else 0)) + serving_rows


def steps(budget, lengths, batch_size: int, step_flops: float) -> float:
    """The optimizer steps a run of `budget` takes on training texts of these token `lengths`."""
    known = budget.total_steps(len(lengths), batch_size)
    if known is not None:
        return known
    if budget.unit == "tokens":
        return budget.amount / (float(lengths.mean()) * batch_size)
    return budget.amount / step_flops  # FLOPs: as full fine-tuning counts them; lighter methods take more steps


def history_key(device_name: str, model: dict, slots: int) -> str:
    """What a fixed cost is kept under: the device, the model (as named, and its weights' hash) and how many runs
    shared the machine (two at once on one CPU each take longer to load and evaluate)."""
    from runners.settings.config import stable_hash

    return f"{device_name} | {model['name']} {stable_hash(model['weights_sha256'], n=8)} | {slots} at a time"


class History:
    """Fixed costs measured on this machine, by key, in a small JSON file of the cache folder. Two commands that
    write it at once may lose one's additions, never corrupt it (each write replaces the file whole)."""

    def __init__(self, cache_dir: str | Path):
        self.path = Path(cache_dir).expanduser() / HISTORY

    def read(self) -> dict[str, list[float]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or unreadable: an estimate is no reason to stop the command
            return {}
        return {k: [float(x) for x in v] for k, v in data.get("fixed_seconds", {}).items() if isinstance(v, list)}

    def fixed(self, key: str) -> tuple[float, int] | None:
        """(the median fixed cost, how many runs it is over) for `key`; None without history."""
        values = self.read().get(key)
        return (statistics.median(values), len(values)) if values else None

    def add(self, key: str, seconds: list[float]) -> None:
        if not seconds:
            return
        from runners.core.files import write_text_atomic

        data = self.read()
        data[key] = (data.get(key, []) + [round(s, 2) for s in seconds])[-KEEP:]
        try:
            write_text_atomic(self.path, json.dumps({"fixed_seconds": data}, indent=1) + "\n")
        except OSError:  # a read-only cache still trains; the next estimate just has less to go on
            pass


def fixed_seconds(wall_s: float, record) -> float | None:
    """An ended run's fixed cost: its wall time less its training seconds; None unless it is a fine-tuning run that
    ended ok (a baseline trains no network; a failed run stopped part way)."""
    if not record.ok or record.method is None or record.method.kind != "method" or record.measurements is None:
        return None
    return max(0.0, wall_s - record.measurements.train_seconds)


@dataclass
class Clock:
    """One command's estimates and what its runs took: the fixed cost is looked up (or probed) under `key`, each run
    this command ran adds its own to the history as it ends, and the end compares the estimates with the wall time.
    `imports_s`: what importing a run's modules took this process (its share of a run's start-up)."""

    history: History
    key: str
    slots: int = 1
    threads: int | None = None  # each run's threads, where the executor sets them (a pool's share of the cores)
    imports_s: float = 0.0
    estimates: list[Estimate] = field(default_factory=list)
    since: float | None = None  # time.monotonic() at the first estimate
    runs: int = 0  # runs this command ran since then

    @classmethod
    def of(cls, executor, cache_dir: str | Path, device_name: str, model: dict, imports_s: float = 0.0) -> Clock:
        """A command's clock: its executor's slots (`workers`; a Ray executor without them counts as one) and each
        run's threads (a pool's share of the cores), its fixed costs kept by device, model and slots."""
        slots = getattr(executor, "workers", None) or 1
        return cls(History(cache_dir), history_key(device_name, model, slots), slots,
                   getattr(executor, "threads", None), imports_s)

    def estimate(self, budget, settings: dict, common: Shared, device, labels: list[str], phases: tuple[int, ...],
                 searched: int = 0, extension_rounds: int = 0, extension_runs: int = 0) -> Estimate:
        """The estimate of `phases` of runs of these method specs; probes only what neither the budget nor the
        history says."""
        known = self.history.fixed(self.key)
        timed = budget.unit == "seconds"
        probed = data = None
        if not timed or known is None:
            from runners.data.batches import load_tokenized
            from runners.planning.probe import probe

            probed = probe(common.model.path, Path(common.tokens), common.num_labels, common.pad_id,
                           settings["batch_size"], settings["eval_batch_size"], device, self.threads)
            data = load_tokenized(common.tokens)
        if timed:
            train_s, train_how = budget.amount, "the time budget"
        else:
            train_s = probed.step_s * steps(budget, data["train"].lengths, settings["batch_size"], probed.step_flops)
            train_how = (f"a full fine-tuning step of {probed.step_s:.2f} s at batch {settings['batch_size']}, median "
                         f"of {probed.steps} ({probed.fastest_s:.2f} to {probed.slowest_s:.2f} s); lighter methods "
                         f"are faster")
        if known is not None:
            fixed_s, fixed_how = known[0], f"the median of {known[1]} earlier run(s) here"
        else:
            rows = eval_rows(len(data["validation"]), len(data["test"]), len(set(settings["checkpoints"]) | {1.0}),
                             settings["test_each_checkpoint"], 0 if common.serving.skip else _serving_rows())
            imports = self.imports_s + _import_seconds(labels)
            fixed_s = fixed_from_probe(imports, probed.load_s, probed.flops_s, probed.row_s, rows)
            fixed_how = (f"no earlier runs here yet, so measured: imports {imports:.1f} s, loading "
                         f"{probed.load_s:.1f} s, {rows:,} rows evaluated at {1000 * probed.row_s:.2f} ms")
        est = Estimate(phases, train_s, fixed_s, self.slots, extension_rounds, extension_runs, searched, train_how,
                       fixed_how)
        self.estimates.append(est)
        if self.since is None:
            self.since = time.monotonic()
        return est

    def ended(self, record, wall_s: float | None) -> None:
        """A run this command ran ended after `wall_s` seconds: counted, and its fixed cost kept for next time."""
        if wall_s is None:  # another command trained it
            return
        self.runs += 1
        fixed = fixed_seconds(wall_s, record)
        if fixed is not None:
            self.history.add(self.key, [fixed])

    def summary(self) -> str | None:
        if not self.estimates or self.since is None:
            return None
        return compared(self.estimates, time.monotonic() - self.since, self.runs)


def _serving_rows() -> int:
    """The rows the serve stage sends through a model: the merge check's twice, the throughput batches, and the
    latency requests (each sent once untimed)."""
    from runners.job.stages import serve as s

    return 2 * s.MERGE_ROWS + s.THROUGHPUT_BATCH * (s.THROUGHPUT_REPEATS + 1) + 2 * s.LATENCY_REQUESTS


def _import_seconds(labels: list[str]) -> float:
    """Import what the methods' runs import beyond the runner (peft, bitsandbytes), timed: a run's process pays it."""
    from methods import parse_spec

    packages = {p for label in labels for p in parse_spec(label).method.packages if p not in sys.modules}
    start = time.perf_counter()
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:  # the run will say so; the estimate just goes without
            pass
    return time.perf_counter() - start


def compared(estimates: list[Estimate], took_s: float, runs: int) -> str:
    """How the estimates said before the runs compare with the wall time they took: one line for the end."""
    from runners.core.files import duration as exact

    said, upper = sum(e.seconds for e in estimates), sum(e.upper for e in estimates)
    up = f" (up to {duration(upper)})" if upper > said else ""
    return f"estimate {duration(said)}{up}; took {exact(took_s)} for {runs} run(s)"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
