"""Run record files: one JSON file per run, named from its config, validated and written atomically, read back
tolerantly (a file that is not a complete record is skipped with one warning; the rest still tabulate)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from runners.core.errors import UserError
from runners.core.files import write_text_atomic
from runners.settings.speedups import loop_label
from runners.store import schema
from runners.store.migrations import migrate
from runners.store.schema import Record, RecordError, validate

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
    return read(path)


def load_records(results: Path, dataset: str) -> list[Record]:
    folder = runs_dir(results, dataset)
    if not folder.is_dir():
        raise UserError(f"no records in {folder}: run `python -m runners.compare` first")
    records = [r for p in sorted(folder.glob("*.json")) if (r := read_record(p)) is not None]
    return sorted(records, key=lambda r: r.timestamp or "")


def row_label(record: Record) -> str:
    """A run's label in tables and plots: its method spec, plus how the loop ran when that is not the default."""
    return record.config.method + loop_label(record.config.ablate, record.config.compile)


def parse(text: str) -> Record:
    """A record from its JSON text, migrated to the current version."""
    try:
        data = json.loads(text, parse_constant=lambda name: None)  # a bare NaN in an old record reads as null
    except ValueError as e:
        raise RecordError(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise RecordError("not a run record (not a JSON object)")
    return validate(migrate(data))


def read(path: Path, warn=None) -> Record | None:
    """The record in `path`, or None (with one warning naming the file and what is wrong) if it has none."""
    try:
        return parse(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, RecordError) as e:
        (warn or _warn)(f"warning: skipping {path}: {e}")
        return None


def _warn(message: str) -> None:
    print(message, file=sys.stderr)
