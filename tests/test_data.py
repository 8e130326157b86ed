"""Loading a data folder: cleaning, the held-out validation split, seeded stratified subsets, label names."""
from __future__ import annotations

import pandas as pd
import pytest

from runners.data import load_splits
from runners.errors import UserError


def load(path, **kw):
    args = {"val_fraction": 0.1, "train_limit": None, "eval_limit": None, "seed": 0, "log": lambda *_: None}
    return load_splits(kw.pop("dataset", "tweets"), str(path), **{**args, **kw})


def test_tweets_fixture(tweets_dir):
    messages = []
    s = load(tweets_dir, log=messages.append)
    assert messages == ["dropped 1 empty text(s) from train"]
    assert (len(s.train), len(s.validation), len(s.test)) == (216, 24, 90)
    assert s.label_names == ("negative", "neutral", "positive")
    assert s.validation.label.value_counts().tolist() == [8, 8, 8]  # stratified
    assert not set(s.train.text) & set(s.validation.text)
    assert s.identity["rows"] == {"train": 216, "validation": 24, "test": 90}


def test_limits_are_seeded_and_stratified(tweets_dir):
    a = load(tweets_dir, train_limit=60, eval_limit=30)
    b = load(tweets_dir, train_limit=60, eval_limit=30)
    assert (len(a.train), len(a.validation), len(a.test)) == (60, 24, 30)  # validation had only 24
    assert a.train.label.value_counts().tolist() == [20, 20, 20]
    assert a.identity["content_sha256"] == b.identity["content_sha256"]
    c = load(tweets_dir, train_limit=60, seed=1)
    assert c.identity["content_sha256"]["train"] != a.identity["content_sha256"]["train"]


def test_imdb_without_label_text_takes_the_dataset_names(imdb_dir):
    s = load(imdb_dir, dataset="imdb")
    assert s.label_names == ("neg", "pos") and s.num_labels == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_other_formats(tmp_path, tweets_dir, fmt):
    for split in ("train", "test"):
        df = pd.read_parquet(tweets_dir / f"{split}.parquet")
        path = tmp_path / f"{split}.{fmt}"
        df.to_csv(path, index=False) if fmt == "csv" else df.to_json(path, orient="records", lines=True)
    assert len(load(tmp_path).test) == 90


def test_folder_errors(tmp_path, tweets_dir):
    with pytest.raises(UserError, match="is not a folder"):
        load(tmp_path / "nope")
    with pytest.raises(UserError, match="no train file"):
        load(tmp_path)
    with pytest.raises(UserError, match="unknown dataset 'sst2'"):
        load(tweets_dir, dataset="sst2")
