"""Files written whole or not at all (a reader sees the old file or the new one, never half of one), where this
checkout is, and a duration as people read it."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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


PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: runners/core/files.py is two folders down


def duration(seconds: float) -> str:
    """`8.2 s`, `3 min 05 s`, `2 h 10 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
