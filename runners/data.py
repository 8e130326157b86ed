"""Datasets: load from the hub or a local folder, drop empty texts, hold out validation, take seeded subsets."""
from __future__ import annotations

import hashlib
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


def load_splits(dataset: str, data_dir: str | None, *, val_fraction: float, train_limit: int | None,
                eval_limit: int | None, seed: int, log=print) -> Splits:
    """Everything a comparison trains and evaluates on, the same for every method and seed."""
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    info = DATASETS[dataset]
    if data_dir:
        train, test, source = _load_dir(Path(data_dir))
    else:
        train, test, source = _load_hub(info.hub_id)
    label_names = _label_names(train, info)
    frames = {}
    for split, df in (("train", train), ("test", test)):
        df = df[["text", "label"]].astype({"text": str, "label": "int64"})
        empty = df.text.str.strip() == ""
        if empty.any():
            log(f"dropped {int(empty.sum())} empty text(s) from {split}")
        frames[split] = df[~empty].reset_index(drop=True)
    train, validation = _stratified_split(frames["train"], val_fraction, seed)
    test = frames["test"]
    if train_limit is not None and train_limit < len(train):
        train = _stratified_subset(train, train_limit, seed)
    if eval_limit is not None:
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
            frames[split] = load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train").to_pandas()
        except Exception as e:
            raise UserError(f"cannot read {path} as {path.suffix[1:]}: {type(e).__name__}: {str(e)[:200]}") from None
        missing = {"text", "label"} - set(frames[split].columns)
        if missing:
            raise UserError(f"{path} lacks column(s) {', '.join(sorted(missing))}; it has "
                            f"{', '.join(map(str, frames[split].columns))}")
    source = {"source": f"dir:{root.resolve()}",
              "files": {p.name: file_sha256(p) for p in files.values()}}
    return frames["train"], frames["test"], source


def _label_names(train: pd.DataFrame, info: DatasetInfo) -> tuple[str, ...]:
    labels = train.label.to_numpy()
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"labels must be integers 0..K-1, found {labels.dtype} values like {labels[0]!r}")
    k = int(labels.max()) + 1
    if labels.min() < 0:
        raise UserError(f"labels must be integers 0..K-1, found {int(labels.min())}")
    if "label_text" in train:
        pairs = train[["label", "label_text"]].drop_duplicates().set_index("label").label_text
        return tuple(str(pairs.get(i, i)) for i in range(k))
    return info.label_names if k == len(info.label_names) else tuple(str(i) for i in range(k))


def _stratified_split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    keep, held = train_test_split(np.arange(len(df)), test_size=fraction, stratify=df.label, random_state=seed)
    return df.iloc[np.sort(keep)].reset_index(drop=True), df.iloc[np.sort(held)].reset_index(drop=True)


def _stratified_subset(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n >= len(df):
        return df
    from sklearn.model_selection import train_test_split

    take, _ = train_test_split(np.arange(len(df)), train_size=n, stratify=df.label, random_state=seed)
    return df.iloc[np.sort(take)].reset_index(drop=True)

