"""The command line's run options are RunConfig's fields (name, default, help), and each one reaches the run."""
from __future__ import annotations

import dataclasses
import json

import pytest

from runners import cli, compare
from runners.data.sources import resolve_source
from runners.settings.config import RunConfig


def test_options_and_defaults_are_run_configs():
    actions = {a.dest: a for a in compare.build_parser()._actions}
    for f in dataclasses.fields(RunConfig):
        assert f.metadata["help"], f.name
        if not f.metadata["flag"]:  # method and seed come from --methods and --seeds, which take lists
            assert f.name not in actions
            continue
        action = actions[f.name]
        assert action.option_strings == [f"--{f.name.replace('_', '-')}"]
        assert action.default == (None if f.metadata["resolved"] else f.default), f.name
        assert action.help.startswith(f.metadata["help"]), f.name


def test_an_empty_command_line_gives_run_configs_defaults():
    args = compare.build_parser().parse_args([])
    source = resolve_source(args.dataset, args.data_dir, text_column=args.text_column,
                            label_column=args.label_column, splits=args.splits, revision=args.data_revision)
    built = RunConfig(method="full", seed=0, **cli.run_settings(args, source))
    assert built == RunConfig(method="full", seed=0)  # a hub dataset's default split names are None too


def test_tuple_options_are_read_by_their_fields_parse():
    args = compare.build_parser().parse_args(["--checkpoints", "1/4,1", "--ablate", "sdpa,bf16", "--warmup", "0",
                                              "--max-grad-norm", "0.5", "--split-seed", "3"])
    settings = cli.run_settings(args, resolve_source(None, None))
    assert (settings["checkpoints"], settings["ablate"]) == ((0.25, 1.0), ("bf16", "sdpa"))
    assert (settings["warmup"], settings["max_grad_norm"], settings["split_seed"]) == (0.0, 0.5, 3)


@pytest.fixture
def base(tmp_path, tiny_model_dir, tweets_dir, cache_dir):
    return ["--model", str(tiny_model_dir), "--data-dir", str(tweets_dir), "--results", str(tmp_path / "results"),
            "--methods", "head", "--budget", "1steps", "--eval-limit", "12", "--quiet"]


@pytest.mark.parametrize("extra, message", [
    (["--warmup", "1"], "error: --warmup must be in [0, 1), got 1.0"),
    (["--max-grad-norm", "-1"], "error: --max-grad-norm must be >= 0"),
    (["--split-seed", "-1"], "error: --split-seed must be in [0, 2**32), got -1"),
    (["--ablate", "bucket"], "error: unknown speed-up 'bucket' for --ablate"),
])
def test_derived_options_are_checked_in_one_line(capsys, base, extra, message):
    assert compare.main([*base, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_a_second_split_seed_gives_a_different_split(base, tmp_path, in_process):
    for seed in ("0", "1"):
        assert compare.main([*base, "--split-seed", seed]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "tweets" / "runs").glob("*.json")]
    by_seed = {r["config"]["split_seed"]: r for r in records}
    assert sorted(by_seed) == [0, 1] and len(records) == 2
    hashes = [by_seed[s]["data"]["content_sha256"] for s in (0, 1)]
    for split in ("train", "validation", "test"):  # held out, and the --eval-limit subsets of both
        assert hashes[0][split] != hashes[1][split], split
    assert by_seed[1]["data"]["split_seed"] == 1
