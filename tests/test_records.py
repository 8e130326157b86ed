"""Records are typed and versioned: every earlier version reads, and a file that is not a complete record is skipped
with one warning naming it, while the rest still make their tables."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runners import report
from runners.store import records as store
from runners.store import schema as record
from runners.store.schema import SCHEMA_VERSION, RecordError, Status

FIXTURES = Path(__file__).parent / "fixtures" / "records"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("v*.json")))
def test_every_earlier_version_is_read_and_migrated(name):
    text = (FIXTURES / name).read_text()
    assert json.loads(text, parse_constant=lambda c: c)["schema"] < SCHEMA_VERSION
    r = store.parse(text)
    old = json.loads(text, parse_constant=lambda c: None)
    assert r.schema_ == SCHEMA_VERSION and r.status is Status.OK
    assert r.config.ablate == tuple(old["config"].get("ablate", ()))  # the shape before `ablate`: none ablated
    assert r.measurements.compile_seconds == 0.0 and r.metrics.accuracy > 0
    again = store.parse(r.to_json())
    assert again == r and "NaN" not in r.to_json()  # strict JSON: a loss not yet read is null


def _mangle(data: dict, how: str) -> str:
    if how == "truncated":
        return json.dumps(data)[:200]
    if how == "corrupt":
        return "\x00\x01 not json"
    if how == "no-metrics":
        data.pop("metrics")
    elif how == "string-metric":
        data["metrics"]["accuracy"] = "NaN"
    elif how == "null-metric":
        data["metrics"]["macro_f1"] = None
    elif how == "nan-time":
        return json.dumps(data).replace('"train_seconds": ', '"train_seconds": NaN, "x": ')
    elif how == "no-experiment":
        data.pop("experiment_id")
    elif how == "unknown-version":
        data["schema"] = 99
    elif how == "not-a-record":
        return json.dumps([1, 2, 3])
    return json.dumps(data)


CASES = {"truncated": "not JSON", "corrupt": "not JSON", "no-metrics": "an ok record lacks metrics",
         "string-metric": "metrics.accuracy", "null-metric": "metrics.macro_f1", "nan-time": "measurements",
         "no-experiment": "experiment_id", "unknown-version": "unknown schema version 99",
         "not-a-record": "not a run record"}


@pytest.mark.parametrize("how", CASES)
def test_a_bad_record_is_refused_with_its_reason(how):
    data = json.loads((FIXTURES / "v1-with-ablate.json").read_text(), parse_constant=lambda c: None)
    with pytest.raises(RecordError, match=CASES[how]):
        store.parse(_mangle(data, how))


def test_report_skips_every_bad_record_and_tabulates_the_rest(tmp_path, capsys):
    runs = tmp_path / "tweets" / "runs"
    runs.mkdir(parents=True)
    good = json.loads((FIXTURES / "v1-with-ablate.json").read_text(), parse_constant=lambda c: None)
    (runs / "good.json").write_text(json.dumps(good))
    for how in CASES:
        (runs / f"{how}.json").write_text(_mangle(json.loads(json.dumps(good)), how))
    assert report.main(["--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == len(CASES) and all(f"{how}.json: " in "".join(warnings) for how in CASES)
    assert f"| {good['config']['method']} " in (tmp_path / "tweets" / "comparison.md").read_text()


def test_the_published_schema_is_the_current_one():
    published = json.loads((ROOT / "results" / "record.schema.json").read_text())
    assert published == json.loads(json.dumps(record.json_schema())), "regenerate: python -m runners.record"


def test_every_committed_record_is_of_the_current_version():
    for path in (ROOT / "results").glob("*/runs/*.json"):
        assert json.loads(path.read_text())["schema"] == SCHEMA_VERSION, path
        assert store.read(path) is not None, path


def test_migrate_rewrites_old_records_once(tmp_path, capsys):
    from runners import migrate

    runs = tmp_path / "imdb" / "runs"
    runs.mkdir(parents=True)
    for p in FIXTURES.glob("v*.json"):
        shutil.copy(p, runs / p.name)
    assert migrate.main([str(tmp_path)]) == 0
    assert "2 record(s) rewritten" in capsys.readouterr().out
    assert migrate.main([str(tmp_path)]) == 0
    assert "0 record(s) rewritten" in capsys.readouterr().out
