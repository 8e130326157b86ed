"""The texts `runners.predict` is given, from its arguments and a file: each numbered, with where it came from, and
the blank ones marked skipped with the reason (a blank text would get a prediction of padding alone)."""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from runners.core.errors import UserError

FORMATS = (".csv", ".tsv", ".jsonl", ".parquet", ".txt")
NAMED_SKIPS = 10  # skipped texts named one by one on stderr; one more line counts the rest


@dataclass(frozen=True)
class Text:
    index: int  # 1-based position among all texts given: the arguments first, then the file's
    source: str  # where it came from: "argument 2", "texts.csv line 3", "texts.parquet row 3"
    text: str
    skipped: str | None = None  # why it is not classified: "empty", "whitespace only" or "missing"


def gather(arguments: list[str], file: str | None, column: str | None) -> list[Text]:
    """The texts of the arguments, then those of `file` (its `column`, default `text`), in order, blank ones marked
    skipped."""
    if column is not None and file is None:
        raise UserError("--text-column names a column of --file: give --file too")
    given = [(f"argument {i}", t) for i, t in enumerate(arguments, 1)]
    if file is not None:
        given += read_file(Path(file), column)
    return [Text(i, source, text or "", _why_skipped(text)) for i, (source, text) in enumerate(given, 1)]


def _why_skipped(text: str | None) -> str | None:
    if text is None:
        return "missing"
    if not text:
        return "empty"
    return "whitespace only" if not text.strip() else None


def warn_skipped(texts: list[Text]) -> None:
    """One line on stderr per skipped text, up to NAMED_SKIPS, then one line counting the rest."""
    skipped = [t for t in texts if t.skipped]
    for t in skipped[:NAMED_SKIPS]:
        print(f"warning: skipped text {t.index} ({t.source}): {t.skipped}", file=sys.stderr)
    if len(skipped) > NAMED_SKIPS:
        print(f"warning: skipped {len(skipped) - NAMED_SKIPS} more blank texts (--jsonl names each)", file=sys.stderr)


def read_file(path: Path, column: str | None) -> list[tuple[str, str | None]]:
    """(where, text) for each record of `path`, by its suffix: .txt one text per line, .csv/.tsv/.jsonl/.parquet
    the `column` of each row (`text` unless named); None where a row holds no value."""
    _check(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: cannot read {suffix or 'a file without a suffix'}: name it {', '.join(FORMATS)}")
    if suffix == ".txt":
        if column is not None:
            raise UserError(f"{path}: a .txt file holds one text per line and no columns: leave --text-column out")
        lines = _decode(path).split("\n")
        if lines[-1] == "":  # the newline that ends the last line starts no text
            lines.pop()
        return [(f"{path.name} line {n}", line.removesuffix("\r")) for n, line in enumerate(lines, 1)]
    column = column or "text"
    if suffix == ".parquet":
        return _parquet(path, column)
    if suffix == ".jsonl":
        return _jsonl(path, column)
    return _csv(path, column, "\t" if suffix == ".tsv" else ",")


def _decode(path: Path) -> str:
    """The file's text, a byte-order mark dropped (spreadsheets write one); a one-line error where there is none."""
    data = _bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}): "
                        f"save it as UTF-8") from None


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def _check(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a file of texts")


def _no_column(path: Path, column: str, columns: list[str]) -> UserError:
    hint = " (a file of texts without a header: name it .txt)" if len(columns) == 1 else ""
    return UserError(f"{path} has no column {column!r}: its columns are {', '.join(map(repr, columns)) or 'none'}; "
                     f"name one with --text-column{hint}")


def _csv(path: Path, column: str, delimiter: str) -> list[tuple[str, str | None]]:
    """Read with the csv module rather than pandas: texts stay as written ("NA" is a text, an empty cell is
    empty), and each row keeps the line it starts on, for the warnings."""
    # A text may be longer than the csv module's default limit on a field (131,072 characters).
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(_decode(path), newline=""), delimiter=delimiter)
    separator = "tab" if delimiter == "\t" else "comma"
    try:
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path} is empty: expected a header line naming a {column!r} column")
        if column not in header:
            raise _no_column(path, column, header)
        at, rows, line = header.index(column), [], reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                raise UserError(f"{path} line {line} has {len(row)} fields where the header has {len(header)}: "
                                f"quote texts that hold a {separator}")
            rows.append((f"{path.name} line {line}", row[at] if row else ""))  # a blank line: an empty text
            line = reader.line_num + 1
    except csv.Error as e:
        raise UserError(f"cannot read {path} as {path.suffix[1:]}: line {reader.line_num}: {e}") from None
    return rows


def _jsonl(path: Path, column: str) -> list[tuple[str, str | None]]:
    """One JSON object per line; a blank line holds no object and no text."""
    rows, columns = [], {}
    for n, line in enumerate(_decode(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {n} is not JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {n} is not a JSON object: expected {{{json.dumps(column)}: \"...\"}}")
        columns.update(dict.fromkeys(record))
        value = record.get(column)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{path} line {n}: {column!r} is {type(value).__name__} {json.dumps(value)[:40]}, "
                            f"not a text")
        rows.append((f"{path.name} line {n}", value))
    if rows and column not in columns:
        raise _no_column(path, column, list(columns))
    return rows


def _parquet(path: Path, column: str) -> list[tuple[str, str | None]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow's errors have no common base class that means "not a parquet file"
        raise UserError(f"cannot read {path} as parquet: {type(e).__name__}: {' '.join(str(e).split())[:200]}") \
            from None
    if column not in table.column_names:
        raise _no_column(path, column, table.column_names)
    values = table.column(column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise UserError(f"{path}: column {column!r} holds {values.type}, not texts: name one with --text-column")
    return [(f"{path.name} row {n}", v) for n, v in enumerate(values.to_pylist(), 1)]
