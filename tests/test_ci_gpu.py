"""`.ci/gpu`, the prepared GPU check, on the CPU: its options and refusals, and that every command it would run
parses with the real parsers (a renamed flag breaks this test, not the one GPU session that runs the script)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runners import bench, compare
from runners.data.shapes import SHAPES
from runners.planning.bench import parse_samples

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "gpu"


def gpu(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}  # the CUDA check imports this interpreter's torch
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def folders(tmp_path: Path) -> list[str]:
    (tmp_path / "standin").mkdir()
    (tmp_path / "tweets").mkdir()
    return ["--tokenizer", str(tmp_path / "standin"), "--data-dir", str(tmp_path / "tweets"),
            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]


def test_help_shows_usage():
    r = gpu("--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: .ci/gpu") and "--dry-run" in r.stdout


def test_an_unknown_option_is_one_line_and_exit_2(folders):
    r = gpu(*folders, "--fast")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [".ci/gpu: unknown option --fast (see --help)"]
    assert not r.stdout


@pytest.mark.parametrize("flag", ["--tokenizer", "--data-dir"])
def test_a_missing_folder_is_named(folders, tmp_path, flag):
    missing = str(tmp_path / "nowhere")
    args = list(folders)
    args[args.index(flag) + 1] = missing
    r = gpu(*args, "--dry-run")
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and missing in r.stderr and flag in r.stderr


def test_without_cuda_it_refuses_and_writes_nothing(folders, tmp_path):
    r = gpu(*folders)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "CUDA is not available" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def commands(out: str) -> dict[str, list[str]]:
    """The dry run's `runners.*` commands, by module, as argument lists after the module."""
    found = {}
    for line in out.splitlines():
        assert line.startswith("+ "), line
        argv = shlex.split(line[2:]) if " -m runners." in line else []
        if argv:
            at = argv.index("-m")
            found.setdefault(argv[at + 1], []).append(argv[at + 2:])
    return found


def test_dry_run_commands_parse_with_the_real_parsers(folders, tmp_path):
    r = gpu(*folders, "--dry-run", "--gpus", "3")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()  # a dry run writes nothing
    found = commands(r.stdout)
    assert set(found) == {"runners.bench", "runners.compare"} and len(found["runners.compare"]) == 2

    [argv] = found["runners.bench"]
    args = bench.build_parser().parse_args(argv)
    shapes = args.model_shape.split(",")
    assert shapes == ["gpt2", "qwen3"] and set(shapes) <= set(SHAPES)
    assert set(args.methods.split(",")) == {"full", "lora", "qlora", "head"}
    assert args.device == "cuda" and not args.with_fp32  # bf16 only
    assert args.results == str(tmp_path / "out")  # so the table is OUT/tweets-cuda.md
    assert args.tokenizer == str(tmp_path / "standin") and args.data_dir == str(tmp_path / "tweets")
    assert set(parse_samples(args.samples, shapes)) >= set(shapes)  # a count for each shape

    cap, pool = (compare.build_parser().parse_args(a) for a in found["runners.compare"])
    for args in (cap, pool):
        compare.check(args)  # the specs, the budget and every setting, as compare checks them before loading
        assert args.device == "cuda" and args.dataset == "tweets" and args.model == str(tmp_path / "standin")
    assert cap.memory_cap and cap.results == str(tmp_path / "work" / "cap")
    assert pool.workers == "3" and pool.results == str(tmp_path / "work" / "pool")
    assert len(pool.methods.split(",")) * len(pool.seeds.split(",")) == 3  # one run per GPU


def test_gpus_must_be_a_count(folders):
    r = gpu(*folders, "--dry-run", "--gpus", "0")
    assert r.returncode == 2 and "--gpus" in r.stderr
