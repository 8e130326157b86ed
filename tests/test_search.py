"""The learning-rate search (`--tune-lr`), without training: the grid, the bracketing, the search's loop with a fake
executor, resume, the checks of its options, and the across-budgets family of tuned experiments."""
from __future__ import annotations

from pathlib import Path

import pytest

from runners import compare
from runners.analysis import selection
from runners.planning import search as tune
from runners.settings import search as search_settings
from runners.settings.budget import parse_budgets
from runners.store import records as store
from runners.store.schema import Status

from tuning import COMMON, FakeExecutor, peaked, search, settings, trial

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
    assert len(changed) == 1 and store.read(tmp_path / changed.pop()).config.lr == 1e-2

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
    assert "lr 0.0001 seed 1000: diverged" in r.error and store.read(Path(job.record_path)) == r


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
    assert parse_budgets("30s, 2m,30s") == ["30s", "2m"]
    assert parse_budgets("32samples,64samples") == ["32samples", "64samples"]


def test_an_extension_step_is_at_most_a_decade():
    wide = _choice({1e-4: 0.3, 1e-2: 0.6})  # --tune-lr 2: the grid's spacing is the whole range, 100x
    assert tune.extension(wide, 1e-4, 1e-2, 2) == pytest.approx(1e-1)
