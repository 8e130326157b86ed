"""Shared fixtures: a tiny random GPT-2 with the real tokenizer, and small data samples, all on the CPU."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide GPT-2 with random weights, saved as safetensors beside the GPT-2 tokenizer files."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=128, vocab_size=50257)
    GPT2LMHeadModel(config).save_pretrained(folder)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(FIXTURES / "tokenizer" / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tweets_dir() -> Path:
    return FIXTURES / "tweets"


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    return FIXTURES / "imdb"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PEFT_LAB_CACHE", str(folder))
    return folder


@pytest.fixture
def in_process(monkeypatch):
    """Run compare's jobs in this process through `worker.main`, as the child would, minus the interpreter start."""
    from runners import compare
    from runners.execute.serial import InProcessExecutor

    monkeypatch.setattr(compare, "Executor", InProcessExecutor)
