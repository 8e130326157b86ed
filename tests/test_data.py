"""Loading a data folder: cleaning, the held-out validation split, seeded stratified subsets, label names."""
from __future__ import annotations

import pandas as pd
import pytest

from runners.core.errors import UserError
from runners.data.sources import resolve_source
from runners.data.splits import load_splits


def load(path, **kw):
    args = {"val_fraction": 0.1, "train_limit": None, "eval_limit": None, "seed": 0, "log": lambda *_: None}
    source = resolve_source(kw.pop("dataset", None), str(path), text_column=kw.pop("text_column", "text"),
                            label_column=kw.pop("label_column", "label"))
    return load_splits(source, **{**args, **kw})


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


def test_imdb_without_label_text_takes_the_dataset_names_only_when_named(imdb_dir):
    said = []
    s = load(imdb_dir, dataset="imdb", log=said.append)
    assert s.label_names == ("neg", "pos") and s.num_labels == 2
    assert any("using imdb's, 0=neg, 1=pos" in m for m in said)
    assert load(imdb_dir).label_names == ("0", "1")  # a folder named imdb is not a claim that it is IMDB


def test_integer_labels_without_names_are_numbered_never_a_built_in_datasets(tmp_path, tweets_dir):
    for k in (3, 4):
        df = pd.read_parquet(tweets_dir / "train.parquet").drop(columns="label_text")
        df = df.assign(label=[i % k for i in range(len(df))])
        for split in ("train", "test"):
            df.to_parquet(tmp_path / f"{split}.parquet")
        said = []
        s = load(tmp_path, log=said.append)
        assert s.label_names == tuple(str(i) for i in range(k)), k
        assert f"labels are integers without names: calling them 0..{k - 1} (--label-names to name them)" in said
    assert load(tmp_path, label_names=("a", "b", "c", "d")).label_names == ("a", "b", "c", "d")
    with pytest.raises(UserError, match=r"--label-names gives 3 names \(a, b, c\) but the labels run 0..3"):
        load(tmp_path, label_names=("a", "b", "c"))


def test_own_columns_tsv_and_class_counts(tmp_path, tweets_dir):
    """A Kaggle-style file: other column names, string labels, tab-separated."""
    for split in ("train", "test"):
        df = pd.read_parquet(tweets_dir / f"{split}.parquet")
        df = df.rename(columns={"text": "review"}).assign(sentiment=df.label_text).drop(columns=["label", "label_text"])
        df.to_csv(tmp_path / f"{split}.tsv", sep="\t", index=False)
    with pytest.raises(UserError, match=r"lacks column\(s\) text, label; it has .*review.*--text-column"):
        load(tmp_path)
    s = load(tmp_path, text_column="review", label_column="sentiment")
    assert s.label_names == ("negative", "neutral", "positive") and len(s.test) == 90
    assert s.identity["text_column"] == "review" and s.identity["dataset"] == tmp_path.name
    assert [sum(c) for c in s.identity["class_counts"].values()] == [216, 24, 90]


def test_a_folder_with_two_train_files_is_ambiguous(tmp_path, tweets_dir):
    for split in ("train", "test"):
        pd.read_parquet(tweets_dir / f"{split}.parquet").to_parquet(tmp_path / f"{split}.parquet")
    pd.read_parquet(tweets_dir / "train.parquet").to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(UserError, match="holds train.csv and train.parquet: which is the train split"):
        load(tmp_path)


def test_train_limit_below_the_classes_is_refused(tweets_dir):
    with pytest.raises(UserError, match="--train-limit 2 is below the 3 classes"):
        load(tweets_dir, train_limit=2)


def test_a_hub_dataset_by_id_with_its_columns_and_a_held_out_test(monkeypatch, tweets_dir):
    """Any hub id: the commit is pinned before loading, and a dataset without a test split gets one held out."""
    import datasets
    import huggingface_hub

    train = pd.read_parquet(tweets_dir / "train.parquet").rename(columns={"text": "sentence"})
    asked = {}

    class Api:
        def dataset_info(self, repo, revision=None):
            asked["info"] = (repo, revision)
            return type("Info", (), {"sha": "c0ffee"})()

    def load_dataset(repo, revision=None):
        asked["load"] = (repo, revision)
        return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(train, preserve_index=False)})

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    source = resolve_source("someone/tweets-like", None, text_column="sentence", revision="v1")
    said = []
    s = load_splits(source, val_fraction=0.1, train_limit=None, eval_limit=None, seed=0, log=said.append)
    assert asked == {"info": ("someone/tweets-like", "v1"), "load": ("someone/tweets-like", "c0ffee")}
    assert source.name == "someone__tweets-like"
    assert s.identity["commit"] == "c0ffee" and s.identity["source"] == "hub:someone/tweets-like"
    assert any("has no 'test' split: held out" in m for m in said)
    assert len(s.train) + len(s.validation) + len(s.test) == len(train) - 1  # one empty text dropped
    with pytest.raises(UserError, match="has no split 'dev'"):
        load_splits(resolve_source("someone/tweets-like", None, splits="train,dev"), val_fraction=0.1,
                    train_limit=None, eval_limit=None, seed=0, log=said.append)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "tsv"])
def test_other_formats(tmp_path, tweets_dir, fmt):
    for split in ("train", "test"):
        df = pd.read_parquet(tweets_dir / f"{split}.parquet")
        path = tmp_path / f"{split}.{fmt}"
        if fmt == "jsonl":
            df.to_json(path, orient="records", lines=True)
        else:
            df.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
    assert len(load(tmp_path).test) == 90


def test_folder_errors(tmp_path, tweets_dir):
    with pytest.raises(UserError, match="is not a folder"):
        load(tmp_path / "nope")
    with pytest.raises(UserError, match="no train file"):
        load(tmp_path)
    with pytest.raises(UserError, match="names the results folder"):
        load(tweets_dir, dataset="my data/v1")


def save(folder, train, test=None):
    folder.mkdir(parents=True, exist_ok=True)
    for split, df in (("train", train), ("test", train if test is None else test)):
        df.to_parquet(folder / f"{split}.parquet")
    return folder


SIX = pd.DataFrame({"text": [f"text {i}" for i in range(12)], "label": [0, 1, 2] * 4})


def test_label_names_win_over_label_text_and_say_so(tmp_path):
    folder = save(tmp_path, SIX.assign(label_text=["negative", "neutral", "positive"] * 4))
    said = []
    assert load(folder, label_names=("bad", "meh", "good"), log=said.append).label_names == ("bad", "meh", "good")
    assert said == ["--label-names bad,meh,good overrides the data's label_text names (negative, neutral, positive)"]
    said.clear()
    assert load(folder, label_names=("negative", "neutral", "positive"), log=said.append).label_names == \
        ("negative", "neutral", "positive")
    assert said == []  # the same names: nothing overridden, nothing to say
    for names in (("bad", "good"), ("bad", "meh", "good", "great")):  # fewer and more are both refused
        with pytest.raises(UserError, match=f"gives {len(names)} names .* but the labels run 0..2: give exactly 3"):
            load(folder, label_names=names)
    for names, why in ((("a", "", "c"), "has an empty name"), (("a", "b", "a"), "gives 'a' twice")):
        with pytest.raises(UserError, match=why):
            load(folder, label_names=names)


def test_label_names_may_only_order_string_labels(tmp_path):
    strings = SIX.assign(label=["neg", "neutral", "pos"] * 4)
    said = []
    s = load(save(tmp_path, strings), label_names=("pos", "neutral", "neg"), log=said.append)
    assert s.label_names == ("pos", "neutral", "neg")
    written = s.train.text.map(dict(zip(strings.text, strings.label)))
    assert (s.train.label == written.map({"pos": 0, "neutral": 1, "neg": 2})).all()
    assert "labels are strings: mapped 'pos'→0, 'neutral'→1, 'neg'→2 (in --label-names order)" in said
    with pytest.raises(UserError, match=r"--label-names bad,meh,good is not the set of the data's string labels "
                                        r"\(neg, neutral, pos\): string labels name themselves"):
        load(tmp_path, label_names=("bad", "meh", "good"))


def test_a_class_without_label_text_keeps_its_number(tmp_path):
    folder = save(tmp_path, SIX.assign(label_text=["negative", "neutral", None] * 4))
    assert load(folder).label_names == ("negative", "neutral", "2")  # not 'nan'


def test_boolean_labels_are_names(tmp_path):
    flags = SIX.assign(label=[True, False] * 6)
    said = []
    s = load(save(tmp_path, flags), log=said.append)
    assert s.label_names == ("False", "True") and "labels are booleans: mapped 'False'→0, 'True'→1" in said


def test_train_limit_above_the_rows_is_said_and_all_are_used(tweets_dir):
    said = []
    s = load(tweets_dir, train_limit=5000, log=said.append)
    assert len(s.train) == 216
    assert "--train-limit 5000 exceeds the 216 training rows (after holding out validation): using all of them" in said


def test_subsets_at_the_edges_are_taken_not_refused(tmp_path, tweets_dir):
    """sklearn wants a row of each class on both sides of a stratified split: one row short of the whole set, and a
    class of a single test row, are still subsets of the asked size."""
    s = load(tweets_dir, train_limit=215, eval_limit=89)
    assert (len(s.train), len(s.test)) == (215, 89) and s.test.label.value_counts().tolist() == [30, 30, 29]
    rare = save(tmp_path, SIX, SIX.assign(label=[0, 1] * 5 + [0, 2]))  # one test row of class 2
    s = load(rare, eval_limit=6)
    assert len(s.test) == 6 and (s.test.label == 2).sum() == 1
