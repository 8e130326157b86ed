"""Run record files: one JSON file per run, named from its config, validated and written atomically, read back
tolerantly (a file that is not a complete record is skipped with one warning; the rest still tabulate)."""
from __future__ import annotations

import re
from pathlib import Path

from runners.core.errors import UserError
from runners.core.files import write_text_atomic
from runners.settings.speedups import loop_label
from runners.store import schema
from runners.store.schema import Record

DEFAULT_RESULTS = "lab-results"  # a user's runs; results/ holds the committed showcase


def run_id(label: str, seed: int, config_hash: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"{slug}-s{seed}-{config_hash}"


def runs_dir(results: Path, dataset: str) -> Path:
    return Path(results) / dataset / "runs"


def write_record(path: Path, data: dict) -> Record:
    """Validate a record built as a dict and write it; a dict that is not a valid record raises RecordError."""
    record = schema.validate(data)
    write_text_atomic(path, record.to_json())
    return record


def read_record(path: Path) -> Record | None:
    """The record in `path` (migrated to the current schema), or None, with one warning when the file is not one."""
    return schema.read(path)


def load_records(results: Path, dataset: str) -> list[Record]:
    folder = runs_dir(results, dataset)
    if not folder.is_dir():
        raise UserError(f"no records in {folder}: run `python -m runners.compare` first")
    records = [r for p in sorted(folder.glob("*.json")) if (r := read_record(p)) is not None]
    return sorted(records, key=lambda r: r.timestamp or "")


def row_label(record: Record) -> str:
    """A run's label in tables and plots: its method spec, plus how the loop ran when that is not the default."""
    return record.config.method + loop_label(record.config.ablate, record.config.compile)
