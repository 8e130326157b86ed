"""Datasets: load from the hub or a local folder, drop empty texts, hold out validation, take seeded subsets."""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from runners.environment import file_sha256
from runners.errors import UserError


@dataclass(frozen=True)
class DatasetInfo:
    hub_id: str
    label_names: tuple[str, ...]
    max_length: int  # default tokens per example; tweets are short, IMDB reviews long


DATASETS = {
    "tweets": DatasetInfo("mteb/tweet_sentiment_extraction", ("negative", "neutral", "positive"), 128),
    "imdb": DatasetInfo("stanfordnlp/imdb", ("neg", "pos"), 512),
}
_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


@dataclass
class Splits:
    """Texts and integer labels for train, validation and test, plus where they came from."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    label_names: tuple[str, ...]
    identity: dict = field(default_factory=dict)  # source, files, row counts, content hashes

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_splits(dataset: str, data_dir: str | None, *, val_fraction: float, train_limit: int | None,
                eval_limit: int | None, seed: int, log=print) -> Splits:
    """Everything a comparison trains and evaluates on, the same for every method and seed."""
    info = dataset_info(dataset)
    if data_dir:
        train, test, source = _load_dir(Path(data_dir))
    else:
        train, test, source = _load_hub(info.hub_id)
    train, test, label_names = _integer_labels(train, test, info, log)
    frames = {}
    for split, df in (("train", train), ("test", test)):
        df = df[["text", "label"]].assign(text=df.text.fillna("").astype(str))
        empty = df.text.str.strip() == ""
        if empty.all():
            raise UserError(f"every text in {split} is empty")
        if empty.any():
            log(f"dropped {int(empty.sum())} empty text(s) from {split}")
        frames[split] = df[~empty].reset_index(drop=True)
    classes = frames["train"].label.unique()
    if len(classes) < 2:
        raise UserError(f"train has a single class (label {classes[0]}): a classifier needs at least two")
    if int(frames["test"].label.max()) >= len(label_names):
        raise UserError(f"test has label {int(frames['test'].label.max())} but train's labels run "
                        f"0..{len(label_names) - 1}")
    train, validation = _stratified_split(frames["train"], val_fraction, seed)
    test = frames["test"]
    if train_limit is not None and train_limit < len(train):
        train = _stratified_subset(train, train_limit, seed)
    if eval_limit is not None:
        for name, df in (("validation", validation), ("test", test)):
            if eval_limit > len(df):
                log(f"--eval-limit {eval_limit} exceeds the {len(df)} {name} rows: using all of them")
        validation = _stratified_subset(validation, min(eval_limit, len(validation)), seed)
        test = _stratified_subset(test, min(eval_limit, len(test)), seed)
    splits = {"train": train, "validation": validation, "test": test}
    identity = {
        "dataset": dataset, **source,
        "rows": {k: len(v) for k, v in splits.items()},
        "content_sha256": {k: content_hash(v) for k, v in splits.items()},
        "val_fraction": val_fraction, "train_limit": train_limit, "eval_limit": eval_limit, "split_seed": seed,
    }
    return Splits(train, validation, test, label_names, identity)


def content_hash(df: pd.DataFrame) -> str:
    """sha256 over the (text, label) rows in order: the identity of exactly what a run saw."""
    h = hashlib.sha256()
    for text, label in zip(df.text, df.label):
        h.update(f"{label}\t{text}\n".encode())
    return h.hexdigest()


def _load_hub(hub_id: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from datasets import load_dataset

    try:
        ds = load_dataset(hub_id)
    except Exception as e:  # network, auth or a renamed dataset: the user needs the reason, not a trace
        raise UserError(f"could not load {hub_id!r} from the hub ({type(e).__name__}: {str(e)[:200]}); "
                        f"offline, pass --data-dir with train/test files") from None
    names = ds["train"].features["label"].names if hasattr(ds["train"].features["label"], "names") else None
    train, test = ds["train"].to_pandas(), ds["test"].to_pandas()
    if names and "label_text" not in train:
        train["label_text"] = [names[i] for i in train.label]
    return train, test, {"source": f"hub:{hub_id}", "fingerprint": ds["train"]._fingerprint}


def _load_dir(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from datasets import load_dataset

    if not root.is_dir():
        raise UserError(f"--data-dir {root} is not a folder")
    files = {}
    for split in ("train", "test"):
        found = sorted(p for p in root.glob(f"{split}.*") if p.suffix in _BUILDERS)
        if not found:
            raise UserError(f"no {split} file in {root}: expected {split}.parquet, {split}.csv or {split}.jsonl")
        files[split] = found[0]
    frames = {}
    for split, path in files.items():
        try:
            with _quiet_datasets():  # it logs its own error before raising; ours below is the one line to show
                frames[split] = load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train").to_pandas()
        except Exception as e:
            while e.__cause__ or e.__context__:  # datasets wraps the parser's error in a generic one
                e = e.__cause__ or e.__context__
            why = " ".join(str(e).split())[:200]
            raise UserError(f"cannot read {path} as {path.suffix[1:]}: {type(e).__name__}: {why}") from None
        missing = {"text", "label"} - set(frames[split].columns)
        if missing:
            raise UserError(f"{path} lacks column(s) {', '.join(sorted(missing))}; it has "
                            f"{', '.join(map(str, frames[split].columns))}")
    source = {"source": f"dir:{root.resolve()}",
              "files": {p.name: file_sha256(p) for p in files.values()}}
    return frames["train"], frames["test"], source


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


def _integer_labels(train: pd.DataFrame, test: pd.DataFrame, info: DatasetInfo,
                    log) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Labels as integers 0..K-1, and their names. String labels map through their sorted set (or the dataset's
    own order when they are its label names), and the mapping is printed."""
    if not pd.api.types.is_numeric_dtype(train.label):
        names = sorted(set(train.label.astype(str)))
        if set(names) == set(info.label_names):
            names = list(info.label_names)
        ids = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(test.label.astype(str)) - set(ids))
        if unknown:
            raise UserError(f"test has label(s) {', '.join(map(repr, unknown[:5]))} that train never has")
        log(f"labels are strings: mapped {', '.join(f'{n!r}→{i}' for n, i in ids.items())}")
        train, test = (df.assign(label=df.label.astype(str).map(ids)) for df in (train, test))
        return train, test, tuple(names)
    for split, df in (("train", train), ("test", test)):
        labels = df.label.to_numpy()
        if np.isnan(labels.astype(float)).any() or (labels != np.round(labels)).any():
            raise UserError(f"{split} labels must be integers 0..K-1 or strings; found missing or fractional ones")
        if labels.min() < 0:
            raise UserError(f"{split} labels must be integers 0..K-1, found {int(labels.min())}")
    k = int(train.label.max()) + 1
    train, test = train.astype({"label": "int64"}), test.astype({"label": "int64"})
    if "label_text" in train:
        pairs = train.drop_duplicates("label").set_index("label").label_text
        return train, test, tuple(str(pairs.get(i, i)) for i in range(k))
    return train, test, info.label_names if k == len(info.label_names) else tuple(str(i) for i in range(k))


def _stratified_split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    classes = df.label.nunique()
    held_out = max(int(np.ceil(fraction * len(df))), classes)  # stratifying needs one row of each class at least
    if len(df) - held_out < classes:
        raise UserError(f"train has {len(df)} rows: too few to hold out a stratified validation split and train")
    keep, held = train_test_split(np.arange(len(df)), test_size=held_out, stratify=df.label, random_state=seed)
    return df.iloc[np.sort(keep)].reset_index(drop=True), df.iloc[np.sort(held)].reset_index(drop=True)


def _stratified_subset(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n >= len(df):
        return df
    from sklearn.model_selection import train_test_split

    take, _ = train_test_split(np.arange(len(df)), train_size=n, stratify=df.label, random_state=seed)
    return df.iloc[np.sort(take)].reset_index(drop=True)

