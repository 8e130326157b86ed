"""Run record files: one JSON file per run, named from its config, validated and written atomically, read back
tolerantly (a file that is not a complete record is skipped with one warning; the rest still tabulate)."""
from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from runners import record as schema
from runners.errors import UserError
from runners.record import Record, Status
from runners.speedups import loop_label

DEFAULT_RESULTS = "lab-results"  # a user's runs; results/ holds the committed showcase


def run_id(label: str, seed: int, config_hash: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"{slug}-s{seed}-{config_hash}"


def runs_dir(results: Path, dataset: str) -> Path:
    return Path(results) / dataset / "runs"


def base_record(job: dict, status: Status = Status.OK, error: str | None = None) -> dict:
    """What every record holds whatever became of the run: its identity, config and context."""
    from runners.environment import versions

    return {"schema": schema.SCHEMA_VERSION, "run_id": job["run_id"], "experiment_id": job["experiment_id"],
            "status": Status(status).value, "error": error, "config": job["config"],
            "method": {"label": job["config"]["method"]}, "model": job["model_identity"],
            "data": job["data_identity"], "versions": versions(), "git": job["git"], "command": job["command"]}


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A new file beside `path` to write into; renamed onto `path` when the block ends, so readers see the old file
    or the new, never half of one; removed if the block fails. Created with mode 0666 less the umask, like any file
    the user writes (mkstemp's 0600 would hide a shared results folder from the rest of a team)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # another writer drew the same name: draw again
            continue
        except OSError as e:  # no permission, disk full: name the file the user asked for, not the temporary
            raise OSError(e.errno, e.strerror, str(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # say which file could not be written
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as f:
        f.write(text.encode("utf-8"))


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
