"""The committed showcase is what the tool makes of its records: regenerating every table of results/ from the
committed run records gives the committed comparison.md, comparison.csv, search.csv and page (index.html), byte for
byte. A change of the code that changes what a table says shows here, and is made on purpose (regenerate: python -m
runners.report --results results --html), never by accident (a refactoring must leave this test passing)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runners import report

RESULTS = Path(__file__).resolve().parent.parent / "results"
DATASETS = sorted(p.parent.name for p in RESULTS.glob("*/runs"))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("showcase")
    for dataset in DATASETS:
        shutil.copytree(RESULTS / dataset / "runs", out / dataset / "runs")
    assert report.main(["--results", str(out), "--html"]) == 0
    return out


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", ["comparison.md", "comparison.csv", "search.csv", "index.html"])
def test_the_committed_tables_are_the_records_tables(regenerated, dataset, name):
    committed = RESULTS / dataset / name
    if not committed.exists():
        assert not (regenerated / dataset / name).exists()
        return
    same = (regenerated / dataset / name).read_text() == committed.read_text()  # no diff of a 5 MB page here
    assert same, (f"results/{dataset}/{name} is not what its records make: python -m runners.report --results results "
                  f"--html, then git diff")


def test_the_showcase_has_both_datasets():
    assert DATASETS == ["imdb", "tweets"]
