"""Tokenized storage, length-grouped batching and dynamic padding."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from runners.data.batches import Collator, TokenizedSplit, length_grouped_batches, load_tokenized, tokenize_cached
from runners.data.models import load_tokenizer

PAD = 50256


@pytest.fixture(scope="module")
def split(tiny_model_dir) -> TokenizedSplit:
    texts = ["hi", "a somewhat longer text here", "mid length one", "x " * 100]
    return TokenizedSplit.from_texts(texts, [0, 1, 2, 1], load_tokenizer(str(tiny_model_dir)), max_length=16)


def test_flat_storage_truncates_and_keeps_order(split, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    assert len(split) == 4 and split.lengths.tolist()[-1] == 16  # truncated at max_length
    first = split.ids[split.offsets[1]:split.offsets[2]].tolist()
    assert first == tok("a somewhat longer text here")["input_ids"]


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_pads_to_the_longest_in_batch(split, side):
    batch = Collator(split, PAD, side, torch.device("cpu"))(np.array([0, 2]))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    width = int(split.lengths[[0, 2]].max())
    assert ids.shape == (2, width) and batch["labels"].tolist() == [0, 2]
    n = int(split.lengths[0])
    real = ids[0, :n] if side == "right" else ids[0, width - n:]
    assert real.tolist() == split.ids[split.offsets[0]:split.offsets[1]].tolist()
    assert mask[0].sum() == n and (ids[0][mask[0] == 0] == PAD).all()
    assert (mask[0, 0] == 1) == (side == "right")


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_pads_to_a_fixed_width(split, side):
    batch = Collator(split, PAD, side, torch.device("cpu"), pad_to=20)(np.array([0, 3]))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == (2, 20) and ids.dtype == mask.dtype == torch.int64
    assert mask.sum(1).tolist() == split.lengths[[0, 3]].tolist() and (ids[mask == 0] == PAD).all()
    n = int(split.lengths[3])
    real = ids[1, :n] if side == "right" else ids[1, 20 - n:]
    assert real.tolist() == split.ids[split.offsets[3]:split.offsets[4]].tolist()


def test_length_grouped_batches_cover_every_example_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 128, size=1000)
    batches = length_grouped_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert lengths[batches[0]].max() == lengths.max()  # longest first: memory trouble shows at step one
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(len(b) * lengths[b].max() for b in np.array_split(rng.permutation(1000), 32))
    assert padded < 0.6 * random_padded


def test_batches_are_seeded():
    lengths = np.arange(100)
    a = length_grouped_batches(lengths, 8, np.random.default_rng(3))
    b = length_grouped_batches(lengths, 8, np.random.default_rng(3))
    c = length_grouped_batches(lengths, 8, np.random.default_rng(4))
    assert all((x == y).all() for x, y in zip(a, b)) and not all((x == y).all() for x, y in zip(a, c))


def test_tokenize_cache_is_reused(tmp_path, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    splits = {"train": pd.DataFrame({"text": ["a b", "c"], "label": [0, 1]})}
    key = {"data": "x"}
    path = tokenize_cached(splits, tok, 8, key, tmp_path)
    mtime = path.stat().st_mtime_ns
    assert tokenize_cached(splits, tok, 8, key, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert tokenize_cached(splits, tok, 4, key, tmp_path) != path  # another max_length, another file
    loaded = load_tokenized(path)["train"]
    assert loaded.labels.tolist() == [0, 1] and loaded.lengths.tolist() == [2, 1]


def test_tokenize_cache_keeps_its_file_names(tmp_path, tiny_model_dir):
    """The key is `stable_hash` now; the names of caches written before must still be found."""
    import hashlib
    import json

    splits = {"train": pd.DataFrame({"text": ["a b"], "label": [0]})}
    key = {"model": {"model.safetensors": "ab"}, "data": "x"}
    before = hashlib.sha256(json.dumps({**key, "max_length": 8}, sort_keys=True).encode()).hexdigest()[:20]
    assert tokenize_cached(splits, load_tokenizer(str(tiny_model_dir)), 8, key, tmp_path).name == f"tokens-{before}.pt"


def test_tokenize_cache_is_written_whole_and_readable(tmp_path, tiny_model_dir, monkeypatch):
    import os
    import stat

    tok = load_tokenizer(str(tiny_model_dir))
    splits = {"train": pd.DataFrame({"text": ["a b"], "label": [0]})}
    old = os.umask(0o022)
    try:
        path = tokenize_cached(splits, tok, 8, {"data": "x"}, tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the user's umask, not mkstemp's private 0600

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(torch, "save", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tokenize_cached(splits, tok, 4, {"data": "x"}, tmp_path)
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no half-written file, no .tmp left behind
