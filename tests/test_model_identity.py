"""A model is named exactly: its hub commit, and the hashes of its weights, config and tokenizer files."""
from __future__ import annotations

import json
import shutil

import pytest

from runners import compare
from runners.core.errors import UserError
from runners.data.models import resolve_model


class Sibling:
    def __init__(self, name):
        self.rfilename = name


def fake_hub(monkeypatch, tmp_path, source_dir, files):
    """huggingface_hub's model_info and snapshot_download, answering from a local folder as the hub would."""
    import huggingface_hub

    calls = {}

    class Api:
        def model_info(self, repo_id, revision=None):
            calls["info"] = (repo_id, revision)
            return type("Info", (), {"sha": "abc123", "siblings": [Sibling(f) for f in files]})()

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls["download"] = (repo_id, revision, tuple(allow_patterns))
        snapshot = tmp_path / "hub" / "snapshots" / revision
        shutil.copytree(source_dir, snapshot, dirs_exist_ok=True)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_a_hub_model_is_pinned_to_its_commit_and_hashes_its_files(monkeypatch, tmp_path, tiny_model_dir):
    files = ["config.json", "model.safetensors", "vocab.json", "merges.txt", "pytorch_model.bin"]
    calls = fake_hub(monkeypatch, tmp_path, tiny_model_dir, files)
    model = resolve_model("org/tiny", revision="v1")
    assert calls["info"] == ("org/tiny", "v1")
    assert calls["download"][:2] == ("org/tiny", "abc123") and "*.bin" not in calls["download"][2]
    assert model["commit"] == "abc123" and model["revision"] == "v1"
    assert set(model["files_sha256"]) == {"config.json", "vocab.json", "merges.txt"}


def test_a_pickle_only_hub_repo_gets_the_pickle_message_before_any_download(monkeypatch, tmp_path, tiny_model_dir):
    calls = fake_hub(monkeypatch, tmp_path, tiny_model_dir, ["config.json", "pytorch_model.bin", "vocab.json"])
    with pytest.raises(UserError, match=r"only pickle weights \(pytorch_model.bin\) in the hub repo;.*--allow-pickle"):
        resolve_model("org/pickled")
    assert "download" not in calls


def test_a_changed_tokenizer_alone_is_a_new_run(tmp_path, tiny_model_dir, tweets_dir, cache_dir, in_process):
    other = tmp_path / "other-tokenizer"
    shutil.copytree(tiny_model_dir, other)
    (other / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    results = tmp_path / "results"
    for folder in (tiny_model_dir, other):
        assert compare.main(["--methods", "head", "--model", str(folder), "--data-dir", str(tweets_dir),
                             "--dataset", "tweets", "--budget", "1steps", "--eval-limit", "12", "--quiet",
                             "--results", str(results)]) == 0
    records = [json.loads(p.read_text()) for p in (results / "tweets" / "runs").glob("*.json")]
    assert len({r["run_id"] for r in records}) == 2  # the second was not skipped as "already done"
    assert {"tokenizer_config.json" in r["model"]["files_sha256"] for r in records} == {True, False}
