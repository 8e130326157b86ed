"""One experiment as every reader of it sees it, built once from its records: its rows by label (the reported runs,
at the rate the search chose where it was tuned), its search trials and each row's choice, the budget parsed once,
the top group with its tests, and the target accuracy. Tables, headers, the verdict, the plots and the
across-budgets section read this object; none of them goes back to the raw records or parses a budget again."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from runners.analysis.ranking import TopGroup
from runners.analysis.selection import Choice, choose
from runners.analysis.verdict import accuracy_group
from runners.settings.budget import Budget
from runners.settings.config import RunConfig
from runners.store.records import row_label
from runners.store.schema import Record

# The curve's key a budget's unit is counted in: an epochs budget is counted in samples.
UNIT_KEYS = {"epochs": "samples", "samples": "samples", "steps": "steps", "tokens": "tokens", "flops": "flops",
             "seconds": "seconds"}


@dataclass
class Row:
    """A row of the table: one method spec (or baseline), its reported runs, and its search's choice if tuned."""

    label: str
    kind: str  # "method" or "baseline"
    runs: list[Record]  # every status; at the chosen rate where the rate was searched
    choice: Choice | None = None

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.runs if r.ok]


@dataclass
class Experiment:
    """Everything one table says, computed once."""

    id: str
    rows: dict[str, Row]  # by label, in the order the runs were recorded
    trials: list[Record]  # the learning-rate search's, when the rates were searched
    target: float | None  # the validation accuracy of the budget-to-target column (None: no curve to read)
    choices: dict[str, Choice] = field(default_factory=dict)  # each searched row's choice, by label
    group: TopGroup | None = None  # by test accuracy; None while no reported run exists yet
    superseded: int = 0  # reported runs at a rate the search no longer chooses, left out
    _records: list[Record] = field(default_factory=list, repr=False)

    @property
    def records(self) -> list[Record]:
        """The reported runs in the table, in the order they were recorded."""
        return self._records

    @property
    def config(self) -> RunConfig:
        return (self._records or self.trials)[-1].config

    @property
    def budget(self) -> Budget:
        return Budget.parse(self.config.budget)

    @property
    def unit(self) -> str:
        """The curve's key the budget is counted in (samples, steps, tokens, flops, seconds)."""
        return UNIT_KEYS[self.budget.unit]

    @property
    def timestamp(self) -> str:
        return max(r.timestamp or "" for r in [*self._records, *self.trials])

    @classmethod
    def of(cls, everything: list[Record], target: float | None = None) -> Experiment:
        """The experiment of these records (one experiment id), `target` the budget-to-target accuracy asked for
        (None: 95% of the best mean final validation accuracy)."""
        trials = [r for r in everything if r.config.search]
        reported = [r for r in everything if not r.config.search]
        select_on = everything[-1].config.select_on
        choices = {label: choose(label, trials, select_on) for label in dict.fromkeys(map(row_label, trials))}
        kept = []
        for r in reported:  # a run made at a rate an earlier, unfinished search chose is superseded, not averaged in
            label = row_label(r)
            if r.config.tune_lr is None or r.method.kind != "method":
                kept.append(r)
            elif r.config.lr == choices.setdefault(label, choose(label, trials, select_on)).lr:
                kept.append(r)
        rows: dict[str, Row] = {}
        for r in kept:
            label = row_label(r)
            row = rows.setdefault(label, Row(label, r.method.kind, [], choices.get(label)))
            row.runs.append(r)
        exp = cls(everything[0].experiment_id, rows, trials,
                  target if target is not None else target_accuracy(kept), choices=choices,
                  superseded=len(reported) - len(kept), _records=kept)
        if kept:
            exp.group = accuracy_group(kept)  # once: the table's bold and the verdict come from the same tests
        return exp


def target_accuracy(records: Iterable[Record], fraction: float = 0.95) -> float | None:
    """`fraction` of the best method's mean final validation accuracy."""
    finals: dict[str, list[float]] = {}
    for r in records:
        if r.ok and r.curve:  # a baseline has no curve: it is a reference, not a candidate
            finals.setdefault(row_label(r), []).append(r.curve[-1].val_accuracy)
    return fraction * max(statistics.fmean(v) for v in finals.values()) if finals else None


def experiments(records: list[Record], target: float | None = None) -> list[Experiment]:
    """The records grouped into experiments (everything but method and seed), the most recent first."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.experiment_id, []).append(r)
    built = [Experiment.of(g, target) for g in groups.values()]
    return sorted(built, key=lambda e: e.timestamp, reverse=True)
