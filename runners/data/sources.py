"""Where a comparison's texts come from: a built-in dataset, any hub dataset, or the user's own files."""
from __future__ import annotations

import csv
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runners.core.errors import UserError
from runners.measure.environment import file_sha256


@dataclass(frozen=True)
class DatasetInfo:
    hub_id: str
    label_names: tuple[str, ...]
    max_length: int  # default tokens per example; tweets are short, IMDB reviews long


BUILT_IN = {
    "tweets": DatasetInfo("mteb/tweet_sentiment_extraction", ("negative", "neutral", "positive"), 128),
    "imdb": DatasetInfo("stanfordnlp/imdb", ("neg", "pos"), 512),
}
DEFAULT_MAX_LENGTH = 128  # for data that is not built in; a warning says when it cuts most texts
# file suffix -> (datasets builder, its extra arguments)
FORMATS = {".parquet": ("parquet", {}), ".csv": ("csv", {}), ".tsv": ("csv", {"delimiter": "\t"}),
           ".jsonl": ("json", {}), ".json": ("json", {})}
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Source:
    """What the user asked for: `name` titles the tables and names the results folder."""

    name: str
    data_dir: str | None = None  # a local folder with train.* and test.*
    hub_id: str | None = None  # when data_dir is None
    text_column: str = "text"
    label_column: str = "label"
    splits: tuple[str, str] = ("train", "test")  # the hub dataset's train and test split names
    revision: str | None = None  # hub dataset revision (branch, tag or commit)
    named: bool = False  # the user gave --dataset (so a built-in name may lend its label names to local files)

    @property
    def info(self) -> DatasetInfo | None:
        return BUILT_IN.get(self.name)

    @property
    def default_max_length(self) -> int:
        return self.info.max_length if self.info else DEFAULT_MAX_LENGTH


def resolve_source(dataset: str | None, data_dir: str | None, *, text_column: str = "text",
                   label_column: str = "label", splits: str | None = None, revision: str | None = None) -> Source:
    """`--dataset`, `--data-dir` and the column flags as one Source. A local folder takes any name (its own
    folder's name by default); without one, a name that is not built in is a hub dataset id."""
    split_names = _split_names(splits)
    if text_column == label_column:
        raise UserError(f"--text-column and --label-column both name {text_column!r}: the texts and the labels are "
                        f"two different columns")
    if data_dir:
        if splits or revision:
            raise UserError("--splits and --data-revision apply to hub datasets; a --data-dir reads its "
                            "train.* and test.* files")
        name = dataset or Path(data_dir).expanduser().resolve().name
        if not _FOLDER_NAME.match(name):
            raise UserError(f"--dataset {name!r} names the results folder: use letters, digits, '.', '_', '-'")
        return Source(name, data_dir=data_dir, text_column=text_column, label_column=label_column,
                      named=dataset is not None)
    dataset = dataset or "tweets"
    hub_id = BUILT_IN[dataset].hub_id if dataset in BUILT_IN else dataset
    if not re.match(r"^[\w.-]+(/[\w.-]+)?$", hub_id):
        raise UserError(f"--dataset {dataset!r}: not a built-in name ({', '.join(BUILT_IN)}) nor a hub id "
                        f"like 'org/name'")
    name = dataset if dataset in BUILT_IN else hub_id.replace("/", "__")
    return Source(name, hub_id=hub_id, text_column=text_column, label_column=label_column,
                  splits=split_names or ("train", "test"), revision=revision, named=True)


def _split_names(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--splits takes TRAIN,TEST split names (e.g. train,validation), got {text!r}")
    return parts[0], parts[1]


def read(source: Source) -> tuple[pd.DataFrame, pd.DataFrame | None, dict, tuple[str, ...] | None, dict]:
    """(train, test or None when the source has none, identity, label names the source itself declares, where each
    split came from: its file, or the hub dataset's split, for messages). Rows keep the files' order."""
    frames, identity, names = _read_dir(source) if source.data_dir else _read_hub(source)
    where = identity.pop("paths", None) or {split: f"{source.hub_id} split {name!r}"
                                            for split, name in identity["splits"].items()}
    for split, df in frames.items():
        if df is None:
            continue
        missing = [c for c in (source.text_column, source.label_column) if c not in df.columns]
        if missing:
            flags = " (--text-column / --label-column map other names)" if source.text_column == "text" else ""
            raise UserError(f"{where[split]} lacks column(s) {', '.join(missing)}; it has "
                            f"{', '.join(map(str, df.columns))}{flags}")
        if df.empty:
            raise UserError(f"{where[split]} has no rows")
        for column, kind in ((source.text_column, "texts must be strings"),
                             (source.label_column, "labels must be integers or strings")):
            _check_scalars(df[column], where[split], column, kind)
        renamed = {source.text_column: "text", source.label_column: "label"}
        keep = [c for c in (source.text_column, source.label_column, "label_text") if c in df.columns]
        frames[split] = df[keep].rename(columns=renamed)
    identity.update(text_column=source.text_column, label_column=source.label_column)
    return frames["train"], frames["test"], identity, names, where


def _check_scalars(values: pd.Series, where: str, column: str, kind: str) -> None:
    """A parquet or JSON cell can hold a list or a mapping, which would be read as its printed form."""
    if values.dtype != object:
        return
    nested = values.map(lambda v: isinstance(v, (dict, list, tuple, np.ndarray))).to_numpy(dtype=bool)
    if nested.any():
        row = int(np.flatnonzero(nested)[0])
        value = values.iloc[row]
        what = "mappings" if isinstance(value, dict) else "lists"
        raise UserError(f"{where}: column {column!r} holds {what} (row {row + 1}, counted from 1: "
                        f"{_short(value)}): {kind}")


def _short(value: object) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_hub(source: Source) -> tuple[dict, dict, tuple[str, ...] | None]:
    from datasets import load_dataset
    from huggingface_hub import HfApi, constants

    train_split, test_split = source.splits
    try:
        # Pin the commit first and load exactly it, so that the record names what was read.
        commit = None if constants.HF_HUB_OFFLINE else HfApi().dataset_info(source.hub_id, revision=source.revision).sha
        ds = load_dataset(source.hub_id, revision=commit or source.revision)
    except Exception as e:  # network, auth or a renamed dataset: the user needs the reason, not a trace
        built_in = f"; built in: {', '.join(BUILT_IN)}" if source.hub_id not in {i.hub_id for i in BUILT_IN.values()} \
            else ""
        raise UserError(f"could not load {source.hub_id!r} from the hub ({type(e).__name__}: {str(e)[:200]})"
                        f"{built_in}; offline, pass --data-dir with train/test files") from None
    if train_split not in ds:
        raise UserError(f"{source.hub_id} has no split {train_split!r}; it has {', '.join(ds)} (--splits TRAIN,TEST)")
    if test_split not in ds and source.splits != ("train", "test"):
        raise UserError(f"{source.hub_id} has no split {test_split!r}; it has {', '.join(ds)} (--splits TRAIN,TEST)")
    feature = ds[train_split].features.get(source.label_column)
    names = tuple(feature.names) if hasattr(feature, "names") else None
    frames = {"train": ds[train_split].to_pandas(),
              "test": ds[test_split].to_pandas() if test_split in ds else None}
    identity = {"source": f"hub:{source.hub_id}", "revision": source.revision, "commit": commit,
                "splits": {"train": train_split, "test": test_split if test_split in ds else None},
                "fingerprint": ds[train_split]._fingerprint}
    return frames, identity, names


def _read_dir(source: Source) -> tuple[dict, dict, None]:
    from datasets import load_dataset

    root = Path(source.data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root} is not a folder")
    paths = {}
    for split in ("train", "test"):
        found = sorted(p for p in root.glob(f"{split}.*") if p.suffix in FORMATS)
        if not found:
            raise UserError(f"no {split} file in {root}: expected {split}.parquet, {split}.csv, {split}.tsv or "
                            f"{split}.jsonl")
        if len(found) > 1:
            raise UserError(f"{root} holds {' and '.join(p.name for p in found)}: which is the {split} split? "
                            f"keep one")
        paths[split] = found[0]
    frames = {}
    for split, path in paths.items():
        builder, options = FORMATS[path.suffix]
        empty = _no_rows(path)  # before the reader, whose words for it are "corresponds to no data" or worse
        if empty:
            raise UserError(f"{path} {empty}")
        try:
            with _quiet_datasets():  # it logs its own error before raising; ours below is the one line to show
                frames[split] = load_dataset(builder, data_files=str(path), split="train", **options).to_pandas()
        except Exception as e:
            while e.__cause__ or e.__context__:  # datasets wraps the parser's error in a generic one
                e = e.__cause__ or e.__context__
            if "corresponds to no data" in str(e):  # a JSON document that is an empty list
                raise UserError(f"{path} has no rows") from None
            why = _bad_json_line(path) if path.suffix == ".jsonl" else None
            why = why or f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
            raise UserError(f"cannot read {path} as {path.suffix[1:]}: {why}") from None
        if builder == "csv":
            _check_header(path, options.get("delimiter", ","), (source.text_column, source.label_column))
    identity = {"source": f"dir:{root.resolve()}", "files": {p.name: file_sha256(p) for p in paths.values()},
                "paths": {k: str(v) for k, v in paths.items()}}
    return frames, identity, None


def _no_rows(path: Path) -> str | None:
    """Why the file holds no rows, when it holds none: empty, a header alone, blank lines, a parquet of 0 rows."""
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return "has no rows" if pq.read_metadata(path).num_rows == 0 else None
        except Exception:  # not parquet at all: the reader's own message says so
            return None
    if path.suffix == ".json":  # one document: an empty list is caught when read
        return None
    try:
        with path.open(encoding="utf-8-sig") as f:
            lines = (line for line in f if line.strip())
            first, second = next(lines, None), next(lines, None)
    except UnicodeDecodeError:  # not text: the reader's own message says so
        return None
    if first is None:
        return "has no rows (only blank lines)"
    if path.suffix in (".csv", ".tsv") and second is None:
        return f"has no rows (only a header: {' '.join(first.split())[:80]})"
    return None


def _bad_json_line(path: Path) -> str | None:
    """The first line of a JSON-lines file that is not a JSON object: the reader names only a byte position."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.strip())
            except ValueError as e:
                return f"line {number} is not JSON: {e.msg} (column {e.colno})"
            if not isinstance(row, dict):
                return f"line {number} is not a JSON object ({_short(row)})"
    return None


def _check_header(path: Path, delimiter: str, wanted: tuple[str, ...]) -> None:
    """A CSV may name two columns alike; the reader then quietly renames the second (`label.1`) and we would read
    whichever came first."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    twice = [c for c in dict.fromkeys(wanted) if header.count(c) > 1]
    if twice:
        raise UserError(f"{path} has {header.count(twice[0])} columns named {twice[0]!r}: rename the others (the "
                        f"reader would quietly take the first)")


@contextmanager
def _quiet_datasets():
    from datasets.utils import logging as ds_logging

    level, bars = ds_logging.get_verbosity(), ds_logging.is_progress_bar_enabled()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    ds_logging.disable_progress_bar()  # "Generating train split" for a local file says nothing useful
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if bars:
            ds_logging.enable_progress_bar()
