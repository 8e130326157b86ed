"""`--tune-lr` end to end on the tiny GPT-2, in this process: the search trials see validation alone, the reported
runs train at the rate the selection rule picks from the trials' records, the tables and plots show the search,
a rerun resumes, and an ablated run finds its own trials."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from runners.analysis import selection
from runners.planning import search as tune
from runners.settings import search as search_settings
from runners.store import records as store
from runners.store import schema as record
from runners.store.records import row_label
from runners.store.schema import Status

from tuning import Spy, run_compare

VAL_ROWS, TEST_ROWS = 12, 30  # the tweets fixture's held-out validation, and its test at --eval-limit 30


TUNED = ("--tune-lr", "2", "--test-each-checkpoint")


def argv(model, data, results, cache, *extra, methods="head,lora", budget="32samples"):
    return ["--methods", methods, "--model", str(model), "--data-dir", str(data), "--budget", budget,
            "--batch-size", "16", "--eval-limit", "30", "--quiet", "--results", str(results),
            "--cache-dir", str(cache), *extra]


def all_records(results: Path) -> list[record.Record]:
    return [r for p in sorted((results / "tweets" / "runs").glob("*.json")) if (r := store.read(p))]


@dataclass
class Tuned:
    results: Path
    cache: Path
    code: int
    out: str
    err: str
    spy: Spy


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_model_dir, tweets_dir) -> Tuned:
    """One tuned comparison: head and lora, two rates each over their declared ranges (extended past an end where
    the best sits there), search seed 1000, reported seed 0. With --test-each-checkpoint, which a search trial
    must not follow: its checkpoints are scored on validation alone."""
    tmp = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        code, out, err, spy = run_compare(argv(tiny_model_dir, tweets_dir, tmp / "results", tmp / "cache",
                                               *TUNED), mp)
    return Tuned(tmp / "results", tmp / "cache", code, out, err, spy)


def cells(md: str, label: str) -> dict[str, str]:
    """The row of a comparison table whose method is `label`, by column header (the first table that has it)."""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| method "):
            headers = [h.strip() for h in line.strip("|").split("|")]
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip("|").split("|")]
                if values[0] == label:
                    return dict(zip(headers, values))
    raise KeyError(label)


def split(records):
    return [r for r in records if r.config.search], [r for r in records if not r.config.search]


# 5. validation only -----------------------------------------------------------------------------------------------

def test_the_tuned_command_ends_ok(tuned):
    assert tuned.code == 0, tuned.err
    assert "head: lr " in tuned.out and "lora: lr " in tuned.out and " chosen (validation accuracy " in tuned.out
    assert "no learning rate had every search trial end ok" not in tuned.out + tuned.err
    assert "estimate: 6 run(s) × " in tuned.out and " if the searches extend (4 of them search trials; " in tuned.out


def test_no_search_trial_evaluates_the_test_split(tuned):
    search_evals = [e for e in tuned.spy.evals if e["search"]]
    reported_evals = [e for e in tuned.spy.evals if e["search"] is False]
    assert search_evals and reported_evals
    assert {e["split"] for e in search_evals} == {"validation"}, search_evals
    assert {e["rows"] for e in search_evals} == {VAL_ROWS}
    # the spy does see a test evaluation where there is one: each reported run's final test
    tests = [e for e in reported_evals if e["split"] == "test"]
    assert {e["rows"] for e in tests} == {TEST_ROWS} and len(tests) > 2  # each checkpoint's, and the final one
    trials, reported = split(all_records(tuned.results))
    assert len([c for c in tuned.spy.runs if c["search"]]) == len(trials)  # every trial was watched
    assert len([c for c in tuned.spy.runs if not c["search"]]) == len(reported) == 2


def test_search_trials_have_no_test_numbers_and_use_the_search_seeds(tuned):
    trials, reported = split(all_records(tuned.results))
    assert trials and all(r.metrics is None and r.predictions is None for r in trials)
    assert all(r.status in tune.SETTLED for r in trials)
    assert all(r.curve and r.measurements for r in trials if r.ok)
    assert {r.seed for r in trials} == {1000} and {r.seed for r in reported} == {0}
    assert all(r.metrics is not None and r.predictions is not None for r in reported)
    # one experiment: the trials belong to the table of the runs they chose the rates of
    assert len({r.experiment_id for r in trials + reported}) == 1
    for label in ("head", "lora"):
        mine = [r for r in trials if r.config.method == label]
        lo, hi = search_settings.lr_range(label, reported[0].config)
        assert {lo, hi} <= {r.config.lr for r in mine}  # the grid's two ends
        assert 2 <= len(mine) <= 2 + search_settings.EXTEND_LIMIT


def test_the_reported_runs_train_at_the_rate_chosen_from_the_trials(tuned):
    trials, reported = split(all_records(tuned.results))
    assert sorted(r.config.method for r in reported) == ["head", "lora"]
    for r in reported:
        choice = selection.choose(row_label(r), trials, "accuracy")
        assert r.ok and choice.lr is not None and r.config.lr == choice.lr
        assert r.method.params["lr"] == choice.lr  # what the worker trained with
        assert f"{r.config.method}: lr {choice.lr:g} chosen" in tuned.out


# 7. tables and plots ----------------------------------------------------------------------------------------------

def test_the_tuned_table_shows_the_rate_and_the_search_cost(tuned):
    trials, reported = split(all_records(tuned.results))
    folder = tuned.results / "tweets"
    md = (folder / "comparison.md").read_text()
    assert "| tuned lr " in md and "| search cost " in md
    assert "**Learning rates:** tuned per method (`--tune-lr 2`, search seeds 1000" in md
    assert "- **Tuned lr:** " in md and "never on the test split" in md and "within one standard error" in md
    for r in reported:
        choice = selection.choose(row_label(r), trials, "accuracy")
        row = cells(md, r.config.method)
        assert row["tuned lr"].split()[0] == f"{choice.lr:.3g}"
        assert row["tuned lr"].endswith(f"⚠ {choice.edge} end") if choice.edge else "⚠" not in row["tuned lr"]
        assert row["search cost"].startswith(f"{choice.trials} × budget, ")
    csv = pd.read_csv(folder / "comparison.csv")
    assert set(csv["search trials"]) == {len([t for t in trials if t.config.method == m]) for m in ("head", "lora")}
    search = pd.read_csv(folder / "search.csv")
    assert len(search) == len(trials)
    assert sorted(zip(search.method, search.lr, search.seed)) == sorted(
        (t.config.method, t.config.lr, t.seed) for t in trials)
    assert set(search.status) <= {s.value for s in tune.SETTLED} and search["val accuracy"].notna().any()
    eid = reported[0].experiment_id
    plot = folder / "plots" / f"{eid}-lr_search.png"
    assert plot.stat().st_size > 10_000 and f"(plots/{plot.name})" in md


def test_a_default_rate_comparison_at_two_budgets_says_so_and_sits_side_by_side(tuned, tmp_path, tiny_model_dir,
                                                                                tweets_dir, monkeypatch):
    results = tmp_path / "results"
    code, out, err, spy = run_compare(argv(tiny_model_dir, tweets_dir, results, tuned.cache,
                                           methods="head", budget="32samples,64samples"), monkeypatch)
    assert code == 0, err
    assert "== budget 32samples ==" in out and "== budget 64samples ==" in out
    assert len(spy.runs) == 2 and not any(c["search"] for c in spy.runs)
    folder = results / "tweets"
    md = (folder / "comparison.md").read_text()
    assert "tuned lr" not in md and "search cost" not in md and "Tuned lr" not in md
    assert md.count("**Learning rates:** each method's default (`--list`), not tuned") == 2
    assert "## Across budgets (32samples, 64samples)" in md and "\nAcross budgets (32samples, 64samples)\n" in out
    (plot,) = (folder / "plots").glob("budgets-*-accuracy_vs_budget.png")
    assert plot.stat().st_size > 10_000 and f"(plots/{plot.name})" in md
    assert not (folder / "search.csv").exists() and not list((folder / "plots").glob("*lr_search.png"))


# 6. resume --------------------------------------------------------------------------------------------------------

@pytest.fixture
def copy(tuned, tmp_path) -> Path:
    """The tuned comparison's results, to change without changing them for the other tests."""
    shutil.copytree(tuned.results, tmp_path / "results")
    return tmp_path / "results"


def stamps(results: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (results / "tweets" / "runs").glob("*.json")}


def test_the_same_command_again_trains_nothing(tuned, copy, tiny_model_dir, tweets_dir, monkeypatch):
    before = stamps(copy)
    code, out, err, spy = run_compare(argv(tiny_model_dir, tweets_dir, copy, tuned.cache, *TUNED),
                                      monkeypatch, plots=False)
    assert code == 0, err
    assert spy.runs == [] and stamps(copy) == before
    assert "trials have a settled record, not run again" in out
    assert out.count("ok record exists") == 2


def test_resume_runs_a_failed_trial_again_but_not_a_diverged_one(tuned, copy, tiny_model_dir, tweets_dir,
                                                                 monkeypatch):
    trials, reported = split(all_records(copy))
    head = sorted((t for t in trials if t.config.method == "head"), key=lambda t: t.config.lr)
    chosen = next(r.config.lr for r in reported if r.config.method == "head")
    # the chosen trial fails; a rate at an end of those tried, not the chosen one, diverged: the search's path
    # over the rounds is the same with it scored or not
    failed = next(t for t in head if t.config.lr == chosen)
    diverged = head[-1] if head[-1].config.lr != chosen else head[0]
    runs = copy / "tweets" / "runs"
    for r, status in ((failed, Status.FAILED), (diverged, Status.DIVERGED)):
        d = json.loads(r.to_json())
        d.update(status=status.value, error=f"it {status.value} (test)", curve=[], measurements=None)
        (runs / f"{r.run_id}.json").write_text(record.validate(d).to_json())
    before = stamps(copy)
    code, out, err, spy = run_compare(argv(tiny_model_dir, tweets_dir, copy, tuned.cache, *TUNED),
                                      monkeypatch, plots=False)
    assert code == 0, err
    ran = [(c["method"], c["lr"], c["seed"], c["search"]) for c in spy.runs]
    assert ("head", chosen, 1000, True) in ran
    assert ("head", diverged.config.lr, 1000, True) not in ran
    assert store.read(runs / f"{failed.run_id}.json").ok
    assert store.read(runs / f"{diverged.run_id}.json").status is Status.DIVERGED
    after = stamps(copy)
    changed = {name for name in before if after[name] != before[name]}
    assert f"{failed.run_id}.json" in changed and f"{diverged.run_id}.json" not in changed
    assert changed <= {f"{r.run_id}.json" for r in trials if r.config.method == "head" and r.config.lr == chosen}, \
        changed  # no settled trial and no reported run trained again (the failed one re-ran to the same score)
    assert ran == [("head", chosen, 1000, True)]


# the --ablate case: the command's search finds its trials by spec, not by the table's row label ---------------

def test_an_ablated_tuned_run_picks_its_rates(tuned, copy, tiny_model_dir, tweets_dir, monkeypatch):
    code, out, err, spy = run_compare(argv(tiny_model_dir, tweets_dir, copy, tuned.cache, *TUNED,
                                           "--ablate", "bucketing", methods="head"), monkeypatch)
    assert code == 0, err
    assert "no learning rate had every search trial end ok" not in out + err
    assert "head: lr " in out and " chosen (validation accuracy " in out
    assert spy.runs and all(tuple(c["ablate"]) == ("bucketing",) for c in spy.runs)
    records = all_records(copy)
    trials = [r for r in records if r.config.search]
    (ablated,) = [r for r in records if not r.config.search and r.config.ablate]
    label = row_label(ablated)
    assert label == "head [no bucketing]"
    choice = selection.choose(label, trials, "accuracy")
    assert ablated.ok and choice.lr is not None and ablated.config.lr == choice.lr
    assert choice.trials == len([c for c in spy.runs if c["search"]])
    # one experiment (ablation is how the loop ran): each row's rate from its own trials
    assert len({r.experiment_id for r in records}) == 1
    md = (copy / "tweets" / "comparison.md").read_text()
    assert cells(md, label)["tuned lr"].split()[0] == f"{choice.lr:.3g}"
    # the row without the ablation keeps the rate its own trials chose
    head = next(r for r in records if not r.config.search and r.config.method == "head" and not r.config.ablate)
    own = selection.choose("head", trials, "accuracy")
    assert head.config.lr == own.lr and cells(md, "head")["tuned lr"].split()[0] == f"{own.lr:.3g}"
