"""The learning-rate search (`--tune-lr`), without training: the grid, the bracketing, the selection rule, resume,
the checks of its options, the record schema of a search trial, the methods' declared ranges and the across-budgets
family of tuned experiments. The search's own loop runs here with a fake executor that writes the trials' records
(a score per rate), so that every path is deterministic; tests/test_tune_e2e.py trains for real."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from runners import compare
from runners.analysis import selection
from runners.job.spec import Job, Shared
from runners.planning import search as tune
from runners.settings import search as search_settings
from runners.store import schema as record
from runners.store.schema import RecordError, Status

FIXTURES = Path(__file__).parent / "fixtures" / "records"


def _base() -> dict:
    """A complete, valid current-version record (the fixture, migrated) as a dict."""
    return json.loads(record.parse((FIXTURES / "v1-with-ablate.json").read_text()).to_json())


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


# 1. the grid ------------------------------------------------------------------------------------------------------

def test_the_grid_is_log_spaced_with_both_ends_to_three_significant_digits():
    assert tune.grid(1e-4, 1e-2, 3) == [1e-4, 1e-3, 1e-2]
    assert tune.grid(1e-4, 1e-2, 2) == [1e-4, 1e-2]
    assert tune.grid(1e-5, 1e-3, 5) == [1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3]
    g = tune.grid(1e-4, 3e-2, 4)
    assert g[0] == 1e-4 and g[-1] == 3e-2 and len(g) == 4
    assert g == [float(f"{x:.3g}") for x in g]  # three significant digits, no float noise
    ratios = [b / a for a, b in zip(g, g[1:])]
    assert ratios == pytest.approx([300 ** (1 / 3)] * 3, rel=5e-3)  # equal steps on the log scale
    assert tune.grid(1e-4, 1e-2, 1) == [1e-3]  # one rate: the geometric middle


def test_the_step_is_the_ratio_between_neighbouring_rates():
    assert tune.step(1e-4, 1e-2, 3) == pytest.approx(10)
    assert tune.step(1e-4, 1e-2, 2) == pytest.approx(100)
    assert tune.step(1e-5, 1e-3, 5) == pytest.approx(10 ** 0.5)
    g = tune.grid(1e-4, 1e-2, 3)
    assert g[1] * tune.step(1e-4, 1e-2, 3) == pytest.approx(g[2])


# 2. bracketing ----------------------------------------------------------------------------------------------------

def _choice(scores: dict[float, float | None], **kwargs) -> selection.Choice:
    """The choice made from trials at these rates (None: the trial diverged)."""
    trials = [trial(lr=lr, accuracy=s) if s is not None else trial(lr=lr, status="diverged")
              for lr, s in scores.items()]
    return selection.choose("lora", trials, "accuracy", **kwargs)


def test_a_best_at_the_high_end_extends_one_step_up():
    c = _choice({1e-4: 0.4, 1e-3: 0.5, 1e-2: 0.6})
    assert (c.lr, c.edge, c.flag) == (1e-2, "high", "at the high end")
    assert tune.extension(c, 1e-4, 1e-2, 3) == pytest.approx(1e-1)


def test_a_best_at_the_low_end_extends_one_step_down():
    c = _choice({1e-4: 0.7, 1e-3: 0.5, 1e-2: 0.6})
    assert (c.lr, c.edge) == (1e-4, "low")
    assert tune.extension(c, 1e-4, 1e-2, 3) == pytest.approx(1e-5)


def test_a_best_in_the_middle_is_bracketed():
    c = _choice({1e-4: 0.4, 1e-3: 0.7, 1e-2: 0.6})
    assert (c.lr, c.edge, c.flag) == (1e-3, None, "")
    assert tune.extension(c, 1e-4, 1e-2, 3) is None


def test_extensions_stop_at_the_limit_and_the_choice_stays_flagged():
    assert search_settings.EXTEND_LIMIT == 2
    # two steps past the high end already tried, the best still the highest
    c = _choice({1e-4: 0.4, 1e-3: 0.5, 1e-2: 0.6, 1e-1: 0.65, 1.0: 0.7})
    assert (c.lr, c.edge) == (1.0, "high")
    assert tune.extension(c, 1e-4, 1e-2, 3) is None
    # one step only: one more is allowed
    c = _choice({1e-4: 0.4, 1e-3: 0.5, 1e-2: 0.6, 1e-1: 0.65})
    assert tune.extension(c, 1e-4, 1e-2, 3) == pytest.approx(1.0)
    # the same at the low end
    c = _choice({1e-6: 0.9, 1e-5: 0.8, 1e-4: 0.7, 1e-3: 0.5, 1e-2: 0.6})
    assert (c.lr, c.edge) == (1e-6, "low") and tune.extension(c, 1e-4, 1e-2, 3) is None
    # the extensions past the other end do not count against this one
    c = _choice({1e-5: 0.1, 1e-4: 0.4, 1e-3: 0.5, 1e-2: 0.6})
    assert tune.extension(c, 1e-4, 1e-2, 3) == pytest.approx(1e-1)


def test_a_diverged_rate_above_the_best_brackets_it():
    c = _choice({1e-4: 0.4, 1e-3: 0.5, 1e-2: None})
    assert (c.lr, c.edge) == (1e-3, None) and c.scores[1e-2] is None
    assert tune.extension(c, 1e-4, 1e-2, 3) is None
    assert c.failures == ["lr 0.01 seed 1000: diverged"]


def test_no_rate_that_trains_means_no_extension():
    c = _choice({1e-4: None, 1e-3: None})
    assert c.lr is None and c.score is None and tune.extension(c, 1e-4, 1e-3, 2) is None


# 3. selection -----------------------------------------------------------------------------------------------------

def test_the_best_mean_over_the_search_seeds_is_chosen():
    trials = [trial(lr=1e-4, seed=1000, accuracy=0.9), trial(lr=1e-4, seed=1001, accuracy=0.3),  # mean 0.6
              trial(lr=1e-3, seed=1000, accuracy=0.7), trial(lr=1e-3, seed=1001, accuracy=0.65)]  # mean 0.675
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 1e-3 and c.score == pytest.approx(0.675) and c.trials == 4
    assert c.scores == pytest.approx({1e-4: 0.6, 1e-3: 0.675})
    assert c.per_seed[1e-4] == pytest.approx([0.9, 0.3])
    assert c.edge == "high"  # the best of the two is the higher


def test_select_on_macro_f1_reads_the_validation_macro_f1():
    trials = [trial(lr=1e-4, accuracy=0.8, macro_f1=0.3),  # one class everywhere: high accuracy, low macro-F1
              trial(lr=1e-3, accuracy=0.6, macro_f1=0.6)]
    assert selection.choose("lora", trials, "accuracy").lr == 1e-4
    c = selection.choose("lora", trials, "macro-f1")
    assert c.lr == 1e-3 and c.score == pytest.approx(0.6)
    assert selection.score(trials[0], "macro-f1") == pytest.approx(0.3)


def test_a_rate_where_one_search_seed_diverged_is_out():
    trials = [trial(lr=1e-2, seed=1000, accuracy=0.95), trial(lr=1e-2, seed=1001, status="diverged"),
              trial(lr=1e-3, seed=1000, accuracy=0.5), trial(lr=1e-3, seed=1001, accuracy=0.5)]
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 1e-3 and c.scores[1e-2] is None and c.per_seed[1e-2] == [0.95]
    assert c.failures == ["lr 0.01 seed 1001: diverged"]
    assert c.edge == "low"  # the lowest rate tried: the search would look below it


def test_ties_go_to_the_lower_rate():
    trials = [trial(lr=lr, accuracy=0.5) for lr in (1e-2, 1e-3, 1e-4)]  # in no particular order
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 1e-4 and c.edge == "low"


def test_records_other_than_the_specs_search_trials_are_ignored():
    trials = [trial(lr=1e-4, accuracy=0.4), trial(lr=1e-3, accuracy=0.5),
              trial(lr=1e-2, accuracy=0.99, search=False),  # a reported run scoring higher: not a trial
              trial(label="head", lr=1e-1, accuracy=0.99),  # another spec's trial
              trial(lr=1e-1, accuracy=0.99, ablate=("bucketing",))]  # another row: the same spec, ablated
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 1e-3 and c.trials == 2 and set(c.scores) == {1e-4, 1e-3}
    # the ablated row's own trials, by its row label; or by the spec alone, as the command's search reads its own
    assert selection.choose("lora [no bucketing]", trials, "accuracy").lr == 1e-1
    assert selection.choose("lora", trials, "accuracy", key=lambda r: r.config.method).lr == 1e-1


def test_the_cost_of_the_search_is_summed_over_its_trials():
    trials = [trial(lr=1e-4), trial(lr=1e-3), trial(lr=1e-2, status="diverged")]
    m = trials[0].measurements
    c = selection.choose("lora", trials, "accuracy")
    assert c.trials == 3
    assert c.seconds == pytest.approx(2 * (m.train_seconds + m.eval_seconds + m.compile_seconds))
    assert c.flops == pytest.approx(2 * m.flops)


# the search's loop, with a fake executor -------------------------------------------------------------------------

COMMON = Shared(model={**BASE["model"], "files_sha256": {"vocab.json": "v"}}, data=BASE["data"], git=BASE["git"],
                command="python -m runners.compare (test)", tokens="unused", num_labels=3, pad_id=0,
                majority_baseline=1 / 3, quiet=True)


def settings(**over) -> dict:
    cfg = dataclasses.asdict(record.parse((FIXTURES / "v1-with-ablate.json").read_text()).config)
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


def test_the_search_stops_where_the_best_is_bracketed(tmp_path):
    fake = FakeExecutor(peaked(1e-3))
    choice = search(tmp_path, fake)["lora"]  # lora declares 1e-4..1e-2: 1e-4, 1e-3, 1e-2
    assert sorted(lr for _, lr, _ in fake.ran) == [1e-4, 1e-3, 1e-2]
    assert (choice.lr, choice.edge, choice.trials) == (1e-3, None, 3)
    assert {seed for _, _, seed in fake.ran} == {1000}


def test_the_search_extends_past_the_high_end_up_to_the_limit(tmp_path):
    log: list[str] = []
    fake = FakeExecutor(peaked(10.0))  # the best lies far above the declared range
    choice = search(tmp_path, fake, log=log)["lora"]
    assert [lr for _, lr, _ in fake.ran] == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]  # the grid, then one a round
    assert (choice.lr, choice.edge) == (1.0, "high")  # still at an end: flagged
    assert sum("is at the high end of those tried and beats the rest by more than the validation noise"
               in line for line in log) == 2
    assert any("lr 1 chosen" in line and "still at the high end" in line for line in log)


def test_the_search_extends_past_the_low_end_and_stops_once_bracketed(tmp_path):
    fake = FakeExecutor(peaked(1e-5))
    choice = search(tmp_path, fake)["lora"]
    assert [lr for _, lr, _ in fake.ran] == [1e-4, 1e-3, 1e-2, 1e-5, 1e-6]
    assert (choice.lr, choice.edge) == (1e-5, None)  # 1e-6 scored lower: bracketed


def test_an_end_of_the_range_rounded_on_the_grid_is_not_counted_as_an_extension(tmp_path):
    """--lr-range 1.2345e-4,1.2355e-2: the grid's ends are 1.23e-4 and 0.0124 (three significant digits), a hair
    outside the range; they are the grid's own, and two steps past each are still allowed."""
    for at, side in ((1e-7, "low"), (10.0, "high")):
        fake = FakeExecutor(peaked(at))
        choice = search(tmp_path / side, fake, lr_range=(1.2345e-4, 1.2355e-2))["lora"]
        assert [lr for _, lr, _ in fake.ran][:3] == [1.23e-4, 1.23e-3, 1.24e-2]
        assert len(fake.ran) == 3 + search_settings.EXTEND_LIMIT, fake.ran
        assert choice.edge == side


def test_a_diverged_extension_brackets_the_best(tmp_path):
    fake = FakeExecutor(peaked(10.0), outcome=lambda lr: "diverged" if lr > 0.05 else "ok")
    choice = search(tmp_path, fake)["lora"]
    assert [lr for _, lr, _ in fake.ran] == [1e-4, 1e-3, 1e-2, 1e-1]
    assert (choice.lr, choice.edge) == (1e-2, None)


def test_every_spec_is_searched_in_its_own_range_on_every_search_seed(tmp_path):
    fake = FakeExecutor(peaked(3e-3))
    choices = search(tmp_path, fake, labels=("lora", "head", "lora:lr_range=1e-3+1e-1"),
                     search_seeds=(1000, 1001))
    ran = {}
    for label, lr, seed in fake.ran:
        ran.setdefault(label, set()).add((lr, seed))
    assert {lr for lr, _ in ran["lora"]} == {1e-4, 1e-3, 1e-2}
    assert {lr for lr, _ in ran["head"]} == {1e-4, 1.73e-3, 3e-2}  # head declares 1e-4..3e-2
    # its own range, 1e-3..1e-1: the best, 1e-3 (0.852), is at its low end, but 1e-2 (0.848) is within the
    # validation noise of it (√(0.852·0.148/500) = 0.016): tied, and the middle of the range wins; no extension
    assert {lr for lr, _ in ran["lora:lr_range=1e-3+1e-1"]} == {1e-3, 1e-2, 1e-1}
    assert all({s for _, s in pairs} == {1000, 1001} for pairs in ran.values())
    assert choices["lora"].lr == 1e-3 and choices["lora"].trials == 6
    assert choices["head"].lr == 1.73e-3 and choices["head"].edge is None
    own = choices["lora:lr_range=1e-3+1e-1"]
    assert (own.lr, own.best, own.tied, own.edge) == (1e-2, 1e-3, [1e-3, 1e-2], None)
    assert own.range == (1e-3, 1e-1) and own.range_source == "spec" and choices["lora"].range_source == "method"


def test_lr_range_overrides_every_declared_range_but_a_specs_own(tmp_path):
    fake = FakeExecutor(peaked(3e-3))
    search(tmp_path, fake, labels=("lora", "lora:lr_range=1e-3+1e-1"), lr_range=(1e-5, 1e-3))
    lrs = {}
    for label, lr, _ in fake.ran:
        lrs.setdefault(label, []).append(lr)
    assert lrs["lora"][:3] == [1e-5, 1e-4, 1e-3]
    assert lrs["lora:lr_range=1e-3+1e-1"][:3] == [1e-3, 1e-2, 1e-1]


def test_select_on_macro_f1_drives_the_search(tmp_path):
    accuracy = peaked(1e-4)  # one class everywhere at a low rate: high accuracy, low macro-F1
    macro_f1 = peaked(1e-3)
    on_f1 = search(tmp_path / "f1", FakeExecutor(accuracy, macro_f1=macro_f1), select_on="macro-f1")["lora"]
    assert (on_f1.lr, on_f1.edge) == (1e-3, None) and on_f1.score == pytest.approx(0.9)
    on_acc = search(tmp_path / "acc", FakeExecutor(accuracy, macro_f1=macro_f1), select_on="accuracy")["lora"]
    assert (on_acc.lr, on_acc.edge) == (1e-4, None)  # after one step down, 1e-5, scored lower
    assert set(on_acc.scores) == {1e-5, 1e-4, 1e-3, 1e-2}


# 6. resume --------------------------------------------------------------------------------------------------------

def test_resume_runs_no_settled_trial_again_but_a_failed_one(tmp_path):
    log: list[str] = []
    first = FakeExecutor(peaked(1e-3), outcome=lambda lr: {1e-4: "diverged", 1e-2: "failed"}.get(lr, "ok"))
    choice = search(tmp_path, first, log=log)["lora"]
    assert choice.lr == 1e-3 and choice.scores[1e-4] is None and choice.scores[1e-2] is None
    assert len(first.ran) == 3 and not any("settled" in line for line in log)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}

    log.clear()
    again = FakeExecutor(peaked(1e-3))  # every trial would end ok now
    choice = search(tmp_path, again, log=log)["lora"]
    assert [lr for _, lr, _ in again.ran] == [1e-2]  # the failed trial only; the diverged one is settled
    assert "search: 2 of 3 trials have a settled record, not run again (--rerun runs them again)" in log
    assert choice.lr == 1e-3 and choice.scores[1e-4] is None and choice.scores[1e-2] == pytest.approx(0.8)
    changed = {p.name for p in tmp_path.glob("*.json") if p.stat().st_mtime_ns != stamps[p.name]}
    assert len(changed) == 1 and record.read(tmp_path / changed.pop()).config.lr == 1e-2

    log.clear()
    third = FakeExecutor(peaked(1e-3))
    search(tmp_path, third, log=log)
    assert third.ran == [] and "search: 3 of 3 trials have a settled record, not run again " \
                               "(--rerun runs them again)" in log
    rerun = FakeExecutor(peaked(1e-3))
    tune.search(["lora"], settings(), COMMON, tmp_path, rerun, rerun=True, log=log.append)
    assert len(rerun.ran) == 3  # --rerun runs every trial again


def test_settled_statuses():
    assert set(tune.SETTLED) == {Status.OK, Status.DIVERGED, Status.OOM, Status.DOES_NOT_FIT}
    assert Status.FAILED not in tune.SETTLED and Status.CANCELLED not in tune.SETTLED


def test_a_spec_whose_every_rate_fails_gets_a_failed_reported_record_saying_why(tmp_path):
    from runners.planning.plan import job_for
    from runners.settings.config import RunConfig

    fake = FakeExecutor(peaked(1e-3), outcome=lambda lr: "diverged")
    choice = search(tmp_path, fake)["lora"]
    assert choice.lr is None and len(choice.failures) == 3
    job = job_for(COMMON, RunConfig(method="lora", seed=0, **settings()), tmp_path, stages=["train", "evaluate"])
    r = tune.unsearched_record(job, choice)
    assert r.status is Status.FAILED and r.error.startswith("no learning rate had every search trial end ok: ")
    assert "lr 0.0001 seed 1000: diverged" in r.error and record.read(Path(job.record_path)) == r


def test_the_search_of_an_ablated_run_finds_its_own_trials(tmp_path):
    """The command's search reads its trials by spec: a row label with '[no bucketing]' would find none."""
    log: list[str] = []
    choice = search(tmp_path, FakeExecutor(peaked(1e-3)), log=log, ablate=("bucketing",))["lora"]
    assert choice.lr == 1e-3 and choice.trials == 3
    assert not any("no learning rate" in line for line in log)


# 4. the options, checked before anything loads ---------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--methods", "lora", "--seeds", "0,1000", "--tune-lr", "2"],
     "--search-seeds and --seeds share 1000"),
    (["--methods", "lora", "--seeds", "3", "--tune-lr", "2", "--search-seeds", "3,4"],
     "--search-seeds and --seeds share 3"),
    (["--methods", "lora", "--lr", "1e-3", "--tune-lr", "2"], "--lr fixes every method's learning rate"),
    (["--methods", "head,lora:lr=1e-3", "--tune-lr", "2"], "lora:lr=1e-3: a spec's :lr= fixes the rate"),
    (["--methods", "lora", "--search-seeds", "5"], "--search-seeds set(s) how --tune-lr searches"),
    (["--methods", "lora", "--select-on", "macro-f1"], "--select-on set(s) how --tune-lr searches"),
    (["--methods", "lora", "--lr-range", "1e-4,1e-2"], "--lr-range set(s) how --tune-lr searches"),
    (["--methods", "lora", "--tune-lr", "1"], "--tune-lr must be >= 2"),
    (["--methods", "lora", "--tune-lr", "2", "--lr-range", "1e-2,1e-4"], "--lr-range must be LO,HI"),
    (["--methods", "lora", "--budget", "10s,32samples"], "the budgets of one command share a unit"),
    (["--methods", "lora", "--budget", "32samples,"], None),  # a trailing comma is fine: not refused here
    (["--baselines", "tfidf", "--tune-lr", "2"], "--methods names none"),
])
def test_tuning_mistakes_exit_2_with_one_line_before_loading(tmp_path, tweets_dir, capsys, monkeypatch, argv,
                                                              message):
    def no_loading(*args, **kwargs):
        raise AssertionError("loaded the model or data before refusing")

    monkeypatch.setattr(compare, "_prepare", no_loading)
    base = ["--data-dir", str(tweets_dir), "--results", str(tmp_path), "--model", str(tmp_path / "no-model")]
    if message is None:  # gets past every check, to the loading
        with pytest.raises(AssertionError, match="loaded the model"):
            compare.main(base + argv)
        return
    assert compare.main(base + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_several_budgets_are_parsed_and_deduplicated():
    assert compare._budgets("30s, 2m,30s") == ["30s", "2m"]
    assert compare._budgets("32samples,64samples") == ["32samples", "64samples"]


# 8. the record of a search trial ----------------------------------------------------------------------------------

def test_a_search_trial_with_test_metrics_or_predictions_is_refused():
    d = trial_dict()
    d["metrics"] = BASE["metrics"]
    with pytest.raises(RecordError, match="a search trial has test metrics"):
        record.validate(d)
    d = trial_dict()
    d["predictions"] = {"rows_sha256": "x", "labels": "012", "predicted": "012"}
    with pytest.raises(RecordError, match="a search trial has test metrics"):
        record.validate(d)
    d = trial_dict(status="diverged")  # whatever its status
    d["metrics"] = BASE["metrics"]
    with pytest.raises(RecordError, match="a search trial has test metrics"):
        record.validate(d)


def test_an_ok_search_trial_without_metrics_is_valid_and_a_reported_run_without_them_is_not():
    r = record.validate(trial_dict())
    assert r.ok and r.metrics is None and r.predictions is None and r.config.search
    assert record.parse(r.to_json()) == r
    d = trial_dict(search=False)
    d["metrics"] = None
    with pytest.raises(RecordError, match="an ok record lacks metrics"):
        record.validate(d)
    d = trial_dict()  # a search trial still needs its curve (its score) and its measurements
    d["curve"] = []
    with pytest.raises(RecordError, match="lacks curve"):
        record.validate(d)


def test_a_schema_2_record_migrates_to_3_with_the_search_settings_at_their_defaults():
    v1 = json.loads((FIXTURES / "v1-with-ablate.json").read_text(), parse_constant=lambda c: None)
    v2 = record._v1_to_v2(v1)
    assert v2["schema"] == 2 and "tune_lr" not in v2["config"]
    r = record.parse(json.dumps(v2))
    assert r.schema_ == record.SCHEMA_VERSION >= 3
    assert (r.config.tune_lr, r.config.search_seeds, r.config.select_on, r.config.lr_range, r.config.search) == \
        (None, (1000,), "accuracy", None, False)
    assert r.metrics == record.parse(json.dumps(v1)).metrics
    # the run's id still holds: the new fields at their defaults are not part of its key
    assert "search" not in r.config.key() and "tune_lr" not in r.config.experiment()


def test_a_tuned_experiment_does_not_depend_on_the_rate_and_a_trial_belongs_to_it():
    trial_cfg = trial(lr=1e-3).config
    reported = dataclasses.replace(trial_cfg, lr=3e-3, search=False, seed=0)
    assert trial_cfg.experiment() == reported.experiment()  # one table, whatever rate each method chose
    assert trial_cfg.key() != reported.key()  # but two runs
    untuned = dataclasses.replace(reported, tune_lr=None)
    assert untuned.experiment() != reported.experiment()
    assert dataclasses.replace(untuned, lr=1e-3).experiment() != untuned.experiment()  # --lr is a setting


# 9, 10. every method's declared range ------------------------------------------------------------------------------

def test_every_method_declares_a_range_around_its_default_rate():
    from methods import registered

    assert registered()
    for name, cls in registered().items():
        method = cls()
        lo, hi = method.lr_range()
        assert 0 < lo < hi, name
        assert lo <= method.params.lr <= hi, (name, method.params.lr, (lo, hi))
        assert method.params.lr_range is not None, f"{name} declares no lr_range of its own"


def test_a_method_without_a_declared_range_searches_a_decade_either_side():
    from methods import get

    method = get("lora")()
    method.params = dataclasses.replace(method.params, lr_range=None, lr=2e-3)
    assert method.lr_range() == pytest.approx((2e-4, 2e-2))
    with pytest.raises(ValueError, match="lr_range must be two rates"):
        dataclasses.replace(method.params, lr_range=(1e-2, 1e-4))


def test_list_shows_every_methods_lr_range(capsys):
    from methods import registered

    assert compare.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, cls in registered().items():
        lo, hi = cls().lr_range()
        block = out.split(f"\n{name} ", 1)[1] if not out.startswith(f"{name} ") else out[len(name):]
        defaults = block.split("\n")[1]
        assert f"lr_range={lo:g}+{hi:g}" in defaults, (name, defaults)
    assert compare.main(["--list", "--markdown"]) == 0
    assert "lr_range=" in capsys.readouterr().out


# 7 (unit). the across-budgets family of tuned experiments ----------------------------------------------------------

def test_tuned_experiments_at_two_budgets_are_one_family_whatever_rates_they_chose(tmp_path):
    from runners.analysis.budgets import across_budgets, families
    from runners.analysis.experiment import Experiment

    def reported(budget, lr, accuracy, experiment):
        d = trial_dict(lr=lr, seed=0, search=False, budget=budget, experiment=experiment)
        d["metrics"]["accuracy"] = accuracy
        return record.validate(d)

    small = [reported("1000samples", 1e-3, 0.6, "e1"), trial(lr=1e-3, budget="1000samples", experiment="e1")]
    large = [reported("4000samples", 3e-3, 0.7, "e2"), trial(lr=3e-3, budget="4000samples", experiment="e2")]
    exps = [Experiment.of(small), Experiment.of(large)]
    fam = families(exps)
    assert len(fam) == 1
    (by_budget,) = fam.values()
    assert list(by_budget) == ["1000samples", "4000samples"]
    assert all(not r.config.search for exp in by_budget.values() for r in exp.records)  # the reported runs only
    (text,) = across_budgets(exps, tmp_path).values()
    assert text.startswith("## Across budgets (1000samples, 4000samples)")
    assert "0.6000 (lr 0.001)" in text and "0.7000 (lr 0.003)" in text
    (png,) = tmp_path.glob("budgets-*-accuracy_vs_budget.png")
    assert png.stat().st_size > 5_000 and f"(plots/{png.name})" in text


def test_a_reported_run_at_a_rate_the_search_no_longer_chooses_is_superseded():
    """A resumed search may choose another rate (a trial that failed ran again and won): the runs made at the old
    rate leave the table instead of being averaged in as extra seeds; rows whose rate was not searched stay."""
    from runners.analysis.experiment import Experiment

    trials = [trial(lr=1e-3, accuracy=0.4), trial(lr=1e-2, accuracy=0.6)]
    old = trial(lr=1e-3, seed=0, search=False)
    new = trial(lr=1e-2, seed=0, search=False)
    untuned = trial(label="head", lr=2e-3, seed=0, search=False, tune_lr=None)  # set by --lr, not searched
    exp = Experiment.of([*trials, old, new, untuned])
    assert exp.records == [new, untuned] and exp.superseded == 1
    assert exp.rows["lora"].runs == [new] and exp.rows["lora"].choice.lr == 1e-2 and exp.rows["head"].choice is None


def test_an_extension_step_is_at_most_a_decade():
    wide = _choice({1e-4: 0.3, 1e-2: 0.6})  # --tune-lr 2: the grid's spacing is the whole range, 100x
    assert tune.extension(wide, 1e-4, 1e-2, 2) == pytest.approx(1e-1)


# 4. the tie rule (trials recorded since schema 5, which name the range searched) ---------------------------------

LORA = (1e-4, 1e-2, "method")


def test_a_difference_inside_the_validation_noise_is_a_tie_broken_toward_the_middle():
    """The issue's search: one validation example of 100 decided, and the rate ran off the top of the range. Now
    the noise of 100 rows at 0.41, √(0.41·0.59/100) = 0.049, ties all three, and the middle of the range wins."""
    trials = [trial(lr=lr, accuracy=a, searched=LORA, validation_rows=100)
              for lr, a in ((1e-4, 0.40), (1e-3, 0.40), (1e-2, 0.41))]
    c = selection.choose("lora", trials, "accuracy")
    assert (c.best, c.lr, c.edge, c.tied) == (1e-2, 1e-3, None, [1e-4, 1e-3, 1e-2])
    assert c.noise == pytest.approx((0.41 * 0.59 / 100) ** 0.5) and not c.earlier_rule and not c.outside
    assert tune.extension(c, 1e-4, 1e-2, 3) is None  # chosen in the middle: nothing to extend
    # on 5,000 validation rows the noise is 0.007: the 0.01 lead is real, and the search steps past the end
    trials = [trial(lr=lr, accuracy=a, searched=LORA, validation_rows=5000)
              for lr, a in ((1e-4, 0.40), (1e-3, 0.40), (1e-2, 0.41))]
    c = selection.choose("lora", trials, "accuracy")
    assert (c.lr, c.edge, c.tied) == (1e-2, "high", [1e-2]) and tune.extension(c, 1e-4, 1e-2, 3) == 1e-1


def test_of_tied_rates_the_one_nearest_the_middle_on_the_log_scale_is_chosen():
    trials = [trial(lr=lr, accuracy=0.5, searched=LORA) for lr in (1e-4, 3e-4, 3e-3, 1e-2)]
    c = selection.choose("lora", trials, "accuracy")  # from 1e-3: 3e-3 is ln 3 = 1.10 away, 3e-4 ln 3.33 = 1.20
    assert c.lr == 3e-3 and c.tied == [1e-4, 3e-4, 3e-3, 1e-2]


def test_a_flat_search_never_walks_out_of_its_range(tmp_path):
    """A classifier that learns nothing scores the same at every rate: the old rule (ties to the lower rate)
    walked down past the range, two steps a side; the tie rule stays in the middle and asks for no extension."""
    fake = FakeExecutor(lambda lr: 0.41)
    choice = search(tmp_path, fake, labels=("head",))["head"]
    assert [lr for _, lr, _ in fake.ran] == [1e-4, 1.73e-3, 3e-2]  # head's grid over 1e-4..3e-2, nothing more
    assert (choice.lr, choice.edge, choice.outside) == (1.73e-3, None, False)


def test_a_method_without_a_declared_range_searches_the_stated_default_and_the_table_flags_it():
    from methods import get
    from runners.analysis.tables import _search_cells
    from runners.settings.config import RunConfig

    method = get("lora")()
    method.params = dataclasses.replace(method.params, lr_range=None, lr=2e-5)
    cfg = RunConfig(method="lora", seed=0, tune_lr=3)
    assert search_settings.searched_range("lora", method, cfg) == (pytest.approx(2e-6), pytest.approx(2e-4), "default")
    assert search_settings.searched_range("lora", method, dataclasses.replace(cfg, lr_range=(1e-5, 1e-3))) == (
        1e-5, 1e-3, "--lr-range")
    trials = [trial(lr=lr, accuracy=0.5, searched=(2e-6, 2e-4, "default")) for lr in (2e-6, 2e-5, 2e-4)]
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 2e-5 and c.range_source == "default"
    row = pd.Series({"search trials": 3, "lr": c.lr, "lr edge": "", "lr outside range": c.outside,
                     "lr range": "2e-06..0.0002", "lr range source": "default", "lr rule": "one standard error",
                     "search seconds": 1.0, "search flops": 1.0})
    assert _search_cells(row)[0] == "2e-05 ⚠ default range"


def test_a_rate_outside_the_range_and_the_earlier_rule_are_flagged():
    from runners.analysis.tables import _search_cells

    trials = [trial(lr=lr, accuracy=a, searched=LORA) for lr, a in ((1e-3, 0.5), (1e-2, 0.6), (1e-1, 0.7))]
    c = selection.choose("lora", trials, "accuracy")
    assert c.lr == 1e-1 and c.outside and c.edge == "high"
    row = pd.Series({"search trials": 3, "lr": c.lr, "lr edge": c.edge, "lr outside range": c.outside,
                     "lr range": "0.0001..0.01", "lr range source": "method", "lr rule": "one standard error",
                     "search seconds": 1.0, "search flops": 1.0})
    assert _search_cells(row)[0] == "0.1 ⚠ high end, outside 0.0001..0.01"
    old = selection.choose("lora", [trial(lr=1e-3, accuracy=0.50), trial(lr=1e-2, accuracy=0.51)], "accuracy")
    assert old.earlier_rule and old.lr == 1e-2  # recorded before schema 5: the highest score, as it was run
    assert _search_cells({**row, "lr": old.lr, "lr edge": "", "lr outside range": False,
                          "lr rule": "highest score (before the tie rule)"})[0] == "0.01†"
