"""Shared fixtures: a tiny random GPT-2 with the real tokenizer, and small data samples, all on the CPU."""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config):
    """Ctrl-C as a terminal gives it, whoever started the suite: a shell that starts it in the background without job
    control leaves SIGINT ignored, which every command the tests start would inherit (and warn about), and the tests
    of Ctrl-C would fail. Its own handler in this process is reset to the default in each child it starts."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Under pytest-xdist (-n N) each worker, and each command it starts, computes on one thread: torch's default
        # of one thread per core, in N workers at once, oversubscribes the cores, and OpenMP's waiting threads spin
        # (measured on 2 cores, -n 2: the contract tests took 300 s of CPU with torch's default, 52 s with one).
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


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


@pytest.fixture
def make_job():
    """A valid job (runners.job.spec.Job) for the executors' tests, which never read its data: `make_job(path)` puts its
    record at `path` (its run id from the file's name); keyword arguments replace its fields."""
    from runners.job.spec import Job
    from runners.settings.config import RunConfig

    def make(record_path, **changes) -> Job:
        fields = dict(tokens="unused.pt", model={"name": "m", "path": "unused", "weights_sha256": {}},
                      data={"dataset": "tweets"}, num_labels=3, pad_id=0, majority_baseline=0.4, git={},
                      command="test", config=RunConfig(method="full", seed=0), run_id=Path(record_path).stem,
                      experiment_id="e", record_path=str(record_path))
        return Job(**{**fields, **changes})

    return make

