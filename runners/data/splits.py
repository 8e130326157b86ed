"""The splits a comparison uses: integer labels and their names, empty texts dropped, validation held out, seeded
stratified subsets."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from runners.core.errors import UserError
from runners.data.labels import integer_labels
from runners.data.sources import Source, read


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


def load_splits(source: Source, *, val_fraction: float, train_limit: int | None, eval_limit: int | None,
                seed: int, label_names: tuple[str, ...] | None = None, log=print) -> Splits:
    """Everything a comparison trains and evaluates on, the same for every method and seed."""
    train, test, identity, declared, where = read(source)
    train, test, names = integer_labels(train, test, source, where, declared, label_names, log)
    frames = {}
    for split, df in (("train", train), ("test", test)):
        if df is None:
            continue
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
    for flag, limit in (("--train-limit", train_limit), ("--eval-limit", eval_limit)):
        if limit is not None and limit < len(names):
            raise UserError(f"{flag} {limit} is below the {len(names)} classes: a stratified subset needs one row "
                            f"of each")
    if "test" in frames and int(frames["test"].label.max()) >= len(names):
        raise UserError(f"test has label {int(frames['test'].label.max())} but train's labels run "
                        f"0..{len(names) - 1}")
    if "test" not in frames:  # a hub dataset without a test split: hold one out, made like validation
        rest, frames["test"] = _stratified_split(frames["train"], val_fraction, seed, names)
        log(f"{source.hub_id} has no {source.splits[1]!r} split: held out {len(frames['test']):,} train rows "
            f"({val_fraction:g}, stratified) as test")
        frames["train"] = rest
    train, validation = _stratified_split(frames["train"], val_fraction, seed, names)
    test = frames["test"]
    if train_limit is not None and train_limit > len(train):
        log(f"--train-limit {train_limit} exceeds the {len(train)} training rows (after holding out validation): "
            f"using all of them")
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
        "dataset": source.name, **identity,
        "rows": {k: len(v) for k, v in splits.items()},
        "class_counts": {k: [int((v.label == i).sum()) for i in range(len(names))] for k, v in splits.items()},
        "content_sha256": {k: content_hash(v) for k, v in splits.items()},
        "val_fraction": val_fraction, "train_limit": train_limit, "eval_limit": eval_limit, "split_seed": seed,
    }
    return Splits(train, validation, test, names, identity)


def content_hash(df: pd.DataFrame) -> str:
    """sha256 over the (text, label) rows in order: the identity of exactly what a run saw."""
    h = hashlib.sha256()
    for text, label in zip(df.text, df.label):
        h.update(f"{label}\t{text}\n".encode())
    return h.hexdigest()


def _stratified_split(df: pd.DataFrame, fraction: float, seed: int,
                      names: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    counts = df.label.value_counts()
    if counts.min() < 2:  # a class of one row cannot be on both sides
        label = int(counts.idxmin())
        raise UserError(f"train has only 1 row of class {names[label]!r} (label {label}): holding out a stratified "
                        f"validation split needs at least 2 rows of each class")
    classes = len(counts)
    held_out = max(int(np.ceil(fraction * len(df))), classes)  # stratifying needs one row of each class at least
    if len(df) - held_out < classes:
        raise UserError(f"train has {len(df)} rows: too few to hold out a stratified validation split and train")
    keep, held = train_test_split(np.arange(len(df)), test_size=held_out, stratify=df.label, random_state=seed)
    return df.iloc[np.sort(keep)].reset_index(drop=True), df.iloc[np.sort(held)].reset_index(drop=True)


def _stratified_subset(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """n rows (n >= the classes) in the classes' proportions. sklearn's split wants two rows of every class and a
    row of each on both sides: a class of one row is kept whole (a subset has one row of each), and when fewer rows
    than classes are left out, they are dropped one each from the largest classes."""
    if n >= len(df):
        return df
    from sklearn.model_selection import train_test_split

    counts = df.label.value_counts()
    single = df.label.isin(counts.index[counts == 1]).to_numpy()
    rest, n_rest = np.flatnonzero(~single), n - int(single.sum())
    if len(rest) - n_rest < int((counts > 1).sum()):
        rng = np.random.default_rng(seed)
        dropped = [rng.choice(np.flatnonzero(df.label.to_numpy() == label)) for label in counts.index[:len(df) - n]]
        take = np.setdiff1d(rest, dropped)
    elif n_rest:
        take, _ = train_test_split(rest, train_size=n_rest, stratify=df.label.iloc[rest], random_state=seed)
    else:
        take = rest[:0]
    return df.iloc[np.sort(np.concatenate([np.flatnonzero(single), take]))].reset_index(drop=True)


def save_texts(splits: Splits, cache_dir: Path) -> Path:
    """The texts and labels of train and test as one parquet in the cache (named by their content hashes), for the
    runs that read texts rather than tokens: the classical baselines, which must see exactly the methods' rows."""
    from runners.core.files import replacing
    from runners.settings.config import stable_hash

    path = Path(cache_dir) / f"texts-{stable_hash(splits.identity['content_sha256'])}.parquet"
    if not path.exists():
        frame = pd.concat([df.assign(split=name) for name, df in (("train", splits.train), ("test", splits.test))])
        with replacing(path) as f:
            frame.reset_index(drop=True).to_parquet(f)
    return path
