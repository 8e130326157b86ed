"""What the learning-rate search's tests share (tests/test_search.py, tests/test_selection.py): trial records built
from a real record of the fixtures, and a fake executor that writes a score per rate, so that every path of the
search is deterministic without training; and for tests/test_tune_e2e.py, which trains for real, a spy on what each
run of the process evaluated."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runners import compare
from runners.execute.serial import InProcessExecutor
from runners.job.spec import Job, Shared
from runners.planning import search as tune
from runners.settings import search as search_settings
from runners.store import records as store
from runners.store import schema as record
from runners.store.schema import Status

FIXTURES = Path(__file__).parent / "fixtures" / "records"


def _base() -> dict:
    """A complete, valid current-version record (the fixture, migrated) as a dict."""
    return json.loads(store.parse((FIXTURES / "v1-with-ablate.json").read_text()).to_json())


BASE = _base()


def trial_dict(label="lora", lr=1e-3, seed=1000, accuracy=0.5, macro_f1=None, status="ok", search=True,
               tune_lr=3, select_on="accuracy", ablate=(), budget="4000samples", experiment="e", searched=None,
               validation_rows=None) -> dict:
    """A search trial's record (or, with search=False, a reported run's) as a dict: ok ones scored `accuracy`
    (and `macro_f1`) at their last checkpoint; others with no curve and an error. `searched`: (lo, hi, source),
    the range its search searched as a record since schema 5 says (None: an older record, which does not)."""
    d = json.loads(json.dumps(BASE))
    if searched is not None:
        d["method"].update(lr_range=list(searched[:2]), lr_range_source=searched[2])
    if validation_rows is not None:
        d["data"]["rows"]["validation"] = validation_rows
    d["config"].update(method=label, seed=seed, lr=lr, search=search, tune_lr=tune_lr, select_on=select_on,
                       ablate=list(ablate), budget=budget)
    d.update(run_id=f"{label}-s{seed}-{lr:g}-{search}", experiment_id=experiment, status=status)
    d["method"]["label"] = label
    if search:
        d["metrics"] = d["predictions"] = None
    if status == "ok":
        last = {**d["curve"][-1], "val_accuracy": accuracy,
                "val_macro_f1": accuracy if macro_f1 is None else macro_f1}
        d["curve"] = d["curve"][:-1] + [last]
        d["error"] = None
    else:
        d.update(curve=[], metrics=None, predictions=None, measurements=None, error=f"it {status}")
    return d


def trial(*args, **kwargs) -> record.Record:
    return record.validate(trial_dict(*args, **kwargs))


COMMON = Shared(model={**BASE["model"], "files_sha256": {"vocab.json": "v"}}, data=BASE["data"], git=BASE["git"],
                command="python -m runners.compare (test)", tokens="unused", num_labels=3, pad_id=0,
                majority_baseline=1 / 3, quiet=True)


def settings(**over) -> dict:
    cfg = dataclasses.asdict(store.parse((FIXTURES / "v1-with-ablate.json").read_text()).config)
    for name in ("method", "seed"):
        cfg.pop(name)
    cfg.update(ablate=(), lr=None, tune_lr=3, checkpoints=tuple(cfg["checkpoints"]), search_seeds=(1000,))
    cfg.update(over)
    return cfg


class FakeExecutor:
    """Writes each trial's record as its worker would: ok, scored `accuracy(lr)` (and `macro_f1(lr)`, by default
    the same), or with the status `outcome(lr)` gives; counts what it ran."""

    def __init__(self, accuracy, outcome=lambda lr: "ok", macro_f1=None):
        self.accuracy, self.outcome, self.macro_f1, self.ran = accuracy, outcome, macro_f1 or accuracy, []

    def __call__(self, jobs: list[Job]) -> None:
        from runners.store.records import write_record

        for job in jobs:
            cfg = job.config.to_dict()
            assert cfg["search"] and job.stages == ("train", "validate")  # never the test split
            self.ran.append((cfg["method"], cfg["lr"], cfg["seed"]))
            status = self.outcome(cfg["lr"])
            d = trial_dict(cfg["method"], cfg["lr"], cfg["seed"], self.accuracy(cfg["lr"]),
                           self.macro_f1(cfg["lr"]), status=status)
            data = {**job.base_record(Status(status), d["error"]), "timestamp": "2025-01-01T00:00:00Z"}
            if status == "ok":
                from methods import parse_spec
                from runners.settings.config import RunConfig

                lo, hi, source = search_settings.searched_range(cfg["method"], parse_spec(cfg["method"]).method,
                                                     RunConfig.from_dict(cfg))  # as the worker records it
                data.update(curve=d["curve"], measurements=d["measurements"], device=d["device"],
                            method={**d["method"], "lr_range": (lo, hi), "lr_range_source": source})
            write_record(Path(job.record_path), data)


def peaked(at: float):
    """Validation accuracy falling off on the log scale either side of `at`."""
    import math

    return lambda lr: round(max(0.0, 0.9 - 0.1 * abs(math.log10(lr / at))), 6)


def search(tmp_path, fake, labels=("lora",), log=None, **over):
    lines = log if log is not None else []
    return tune.search(list(labels), settings(**over), COMMON, tmp_path, fake, log=lines.append)


@dataclass
class Spy:
    """What each run of this process did: its config, and every split it evaluated (by identity, and its rows)."""

    runs: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    current: dict | None = None
    splits: dict = field(default_factory=dict)

    def install(self, mp: pytest.MonkeyPatch) -> Spy:
        from runners.job import loop as train
        from runners.job import worker
        from runners.job.stages import evaluate as stage

        real_run, real_load, real_evaluate = worker.run, worker.load_tokenized, train.evaluate

        def run(job):
            self.current = job.config.to_dict()
            self.runs.append(self.current)
            try:
                return real_run(job)
            finally:
                self.current = None

        def load_tokenized(path):
            data = real_load(path)
            self.splits = dict(data)  # before a search trial's worker drops the test split
            return data

        def evaluate(model, split, *args, **kwargs):
            name = next((n for n, s in self.splits.items() if s is split), "?")
            cfg = self.current or {}
            self.evals.append({"search": cfg.get("search"), "method": cfg.get("method"), "lr": cfg.get("lr"),
                               "split": name, "rows": len(split)})
            return real_evaluate(model, split, *args, **kwargs)

        mp.setattr(worker, "run", run)
        mp.setattr(worker, "load_tokenized", load_tokenized)
        mp.setattr(stage, "evaluate", evaluate)
        mp.setattr(train, "evaluate", evaluate)
        return self


def run_compare(args: list[str], mp: pytest.MonkeyPatch, plots: bool = True) -> tuple[int, str, str, Spy]:
    """compare.main in this process, its runs in this process too, watched by a Spy. The estimate's probe step (a
    full fine-tuning step, tested in test_estimate.py) is skipped for time; and the plots where `plots` is false."""
    from runners.analysis import comparison
    from runners.planning import probe

    mp.setattr(compare, "Executor", InProcessExecutor)
    mp.setattr(probe, "probe", lambda *args, **kwargs: probe.Probe(0.01, 5, 0.01, 0.01, 1e9, 0.1, 0.1, 1e-3))
    if not plots:
        mp.setattr(comparison, "write_plots", lambda *args, **kwargs: [])
    spy = Spy().install(mp)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = compare.main(args)
    return code, out.getvalue(), err.getvalue(), spy
