"""The learning-rate search's selection rule (runners.analysis.selection), without training: the best mean over the
search seeds, the tie rule, the table's flags, the record of a search trial and every method's declared range."""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from runners import compare
from runners.analysis import selection
from runners.planning import search as tune
from runners.settings import search as search_settings
from runners.store import migrations
from runners.store import records as store
from runners.store import schema as record
from runners.store.schema import RecordError

from tuning import BASE, FIXTURES, FakeExecutor, search, trial, trial_dict


def _choice(scores: dict[float, float | None], **kwargs) -> selection.Choice:
    """The choice made from trials at these rates (None: the trial diverged)."""
    trials = [trial(lr=lr, accuracy=s) if s is not None else trial(lr=lr, status="diverged")
              for lr, s in scores.items()]
    return selection.choose("lora", trials, "accuracy", **kwargs)


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
    assert store.parse(r.to_json()) == r
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
    v2 = migrations._v1_to_v2(v1)
    assert v2["schema"] == 2 and "tune_lr" not in v2["config"]
    r = store.parse(json.dumps(v2))
    assert r.schema_ == record.SCHEMA_VERSION >= 3
    assert (r.config.tune_lr, r.config.search_seeds, r.config.select_on, r.config.lr_range, r.config.search) == \
        (None, (1000,), "accuracy", None, False)
    assert r.metrics == store.parse(json.dumps(v1)).metrics
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
