"""Run records: one JSON file per run, named from its config, written atomically, read back tolerantly."""
from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from runners.errors import UserError
from runners.speedups import loop_label

SCHEMA = 1
DEFAULT_RESULTS = "lab-results"  # a user's runs; results/ holds the committed showcase
STATUSES = ("ok", "oom", "does-not-fit", "diverged", "failed", "cancelled")


def run_id(label: str, seed: int, config_hash: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"{slug}-s{seed}-{config_hash}"


def runs_dir(results: Path, dataset: str) -> Path:
    return Path(results) / dataset / "runs"


def base_record(job: dict, status: str = "ok", error: str | None = None) -> dict:
    """What every record holds whatever became of the run: its identity, config and context."""
    from runners.environment import versions

    return {"schema": job["schema"], "run_id": job["run_id"], "experiment_id": job["experiment_id"],
            "status": status, "error": error, "config": job["config"], "method": {"label": job["config"]["method"]},
            "model": job["model_identity"], "data": job["data_identity"], "versions": versions(),
            "git": job["git"], "command": job["command"]}


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


def write_json_atomic(path: Path, obj: dict) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_record(path: Path) -> dict | None:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        print(f"warning: skipping unreadable record {path}: {e}", file=sys.stderr)
        return None
    if not isinstance(record, dict) or record.get("status") not in STATUSES or "config" not in record:
        print(f"warning: skipping {path}: not a run record", file=sys.stderr)
        return None
    return record


def load_records(results: Path, dataset: str) -> list[dict]:
    folder = runs_dir(results, dataset)
    if not folder.is_dir():
        raise UserError(f"no records in {folder}: run `python -m runners.compare` first")
    records = [r for p in sorted(folder.glob("*.json")) if (r := read_record(p)) is not None]
    return sorted(records, key=lambda r: r.get("timestamp", ""))


def row_label(record: dict) -> str:
    """A run's label in tables and plots: its method spec, plus how the loop ran when that is not the default."""
    config = record["config"]
    return config["method"] + loop_label(tuple(config.get("ablate", ())), config.get("compile", False))
