"""Every user mistake ends in one line on stderr and exit code 2, before any run starts; a few are mended instead."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from runners import compare, report

TRAIN = pd.DataFrame({"text": ["good", "bad", "fine", "awful", "great", "poor"], "label": [1, 0, 1, 0, 1, 0]})


def write(folder, train=TRAIN, test=TRAIN, fmt="parquet"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (("train", train), ("test", test)):
        if df is not None:
            getattr(df, "to_parquet" if fmt == "parquet" else "to_csv")(folder / f"{name}.{fmt}", index=False)
    return folder


def one_line_error(capsys, argv) -> str:
    assert compare.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def base(tmp_path, tiny_model_dir, cache_dir):
    return ["--model", str(tiny_model_dir), "--results", str(tmp_path / "results"), "--methods", "head",
            "--budget", "1steps", "--quiet"]


def test_method_spec_mistakes(capsys, base, tweets_dir):
    data = ["--data-dir", str(tweets_dir)]
    for spec, message in [
        ("lroa", "unknown method 'lroa'. Did you mean 'lora'? Registered: adalora, bitfit"),
        ("lora:alpah=4", "unknown parameter 'alpah' for lora. Did you mean 'alpha'? Allowed: lr,"),
        ("lora:r=0", "lora:r=0: r must be >= 1, got 0"),
        ("lora:r=abc", "r='abc' is not a valid int"),
        ("", "no method given"),
    ]:
        assert message in one_line_error(capsys, [*base, *data, "--methods", spec])


def test_data_mistakes(capsys, base, tmp_path):
    cases = {
        "missing": (None, "is not a folder"),
        "empty": (lambda d: d.mkdir(), "no train file in"),
        "no-test": (lambda d: write(d, test=None), "no test file in"),
        "garbage": (lambda d: (write(d), (d / "train.parquet").write_text("not parquet at all")), "cannot read"),
        "liar": (lambda d: (write(d), shutil.move(d / "train.parquet", d / "train.csv"),
                            (d / "train.csv").write_bytes(b"\x00\x01PAR1\xff\xfe" * 50)), "cannot read"),
        "no-text": (lambda d: write(d, TRAIN.rename(columns={"text": "review"})), "lacks column(s) text"),
        "no-label": (lambda d: write(d, test=TRAIN.drop(columns="label")), "lacks column(s) label"),
        "negative": (lambda d: write(d, TRAIN.assign(label=[1, 0, 1, 0, 1, -1])), "found -1"),
        "out-of-range": (lambda d: write(d, test=TRAIN.assign(label=[1, 0, 2, 0, 1, 0])),
                         "test has label 2 but train's labels run 0..1"),
        "unseen-string": (lambda d: write(d, TRAIN.assign(label=["pos", "neg"] * 3),
                                          TRAIN.assign(label=["pos", "meh"] * 3)), "test has label(s) 'meh'"),
        "one-class": (lambda d: write(d, TRAIN.assign(label=0)), "train has a single class (label 0)"),
        "all-empty": (lambda d: write(d, TRAIN.assign(text=["", " "] * 3)), "every text in train is empty"),
    }
    for name, (make, message) in cases.items():
        folder = tmp_path / name
        if make:
            make(folder)
        assert message in one_line_error(capsys, [*base, "--data-dir", str(folder)]), name


def test_other_flag_mistakes(capsys, base, tweets_dir, tmp_path, monkeypatch):
    data = ["--data-dir", str(tweets_dir)]
    (tmp_path / "a-file").write_text("")
    both = tmp_path / "both"
    shutil.copytree(tweets_dir, both)
    pd.read_parquet(both / "train.parquet").to_csv(both / "train.csv", index=False)
    cuda = "--device cuda asked for, but torch sees no CUDA device" if not torch.cuda.is_available() else None
    for extra, message in [
        (["--budget", "5 parsecs"], "bad budget '5 parsecs'"),
        (["--budget", "-5s"], "bad budget '-5s': seconds must be a positive number"),
        (["--budget", "0samples"], "bad budget '0samples': samples must be a positive integer"),
        (["--max-length", "4096"], "--max-length 4096 exceeds the model's 128 positions"),
        (["--results", str(tmp_path / "a-file" / "results")], "cannot write results to"),
        (["--seeds", "-1"], "--seeds must be integers >= 0, got '-1'"),
        (["--eval-limit", "0"], "--eval-limit must be >= 1, got 0"),
        (["--train-limit", "2"], "--train-limit 2 is below the 3 classes"),
        (["--val-fraction", "1"], "--val-fraction must be in (0, 1), got 1.0"),
        (["--data-dir", str(both)], "holds train.csv and train.parquet: which is the train split? keep one"),
        (["--device", "cuda"], cuda),
    ]:
        if message:
            assert message in one_line_error(capsys, [*base, *data, *extra]), extra


def test_an_unknown_hub_dataset_says_what_is_built_in(capsys, base, monkeypatch):
    import huggingface_hub

    class Offline:  # no network in tests: the hub answers as it does offline
        def dataset_info(self, *args, **kwargs):
            raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "HfApi", Offline)
    err = one_line_error(capsys, [*base, "--dataset", "sst2"])
    assert "could not load 'sst2' from the hub (ConnectionError" in err and "built in: tweets, imdb" in err


def test_debug_keeps_exit_code_2_and_adds_the_traceback(capsys, base, tweets_dir):
    assert compare.main([*base, "--data-dir", str(tweets_dir), "--seeds", "-1", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "error: --seeds must be integers >= 0" in err


def test_allowed_but_doubtful_inputs_warn_in_one_line(capsys, base, tweets_dir, in_process):
    argv = [*base, "--data-dir", str(tweets_dir), "--eval-limit", "12", "--train-limit", "9", "--max-length", "4",
            "--batch-size", "16"]
    assert compare.main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: 9 training rows are fewer than one batch of 16" in err
    assert "warning: --max-length 4 cuts 89% of the training texts to 4 tokens" in err  # 8 of the 9


def test_model_folder_mistakes(capsys, base, tweets_dir, tmp_path, tiny_model_dir):
    no_config = tmp_path / "no-config"
    shutil.copytree(tiny_model_dir, no_config)
    (no_config / "config.json").unlink()
    for folder, message in [(tmp_path / "nowhere", "no such folder"), (no_config, "no config.json in")]:
        assert message in one_line_error(capsys, [*base, "--data-dir", str(tweets_dir), "--model", str(folder)])


def test_pickle_weights_are_refused_unless_allowed(capsys, base, tweets_dir, tmp_path, tiny_model_dir, in_process):
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    argv = [*base, "--data-dir", str(tweets_dir), "--model", str(pickled), "--eval-limit", "12"]
    assert "only pickle weights (pytorch_model.bin)" in one_line_error(capsys, argv)
    assert "--allow-pickle" in one_line_error(capsys, argv)
    assert compare.main([*argv, "--allow-pickle"]) == 0
    record = json.loads(next((tmp_path / "results" / "tweets" / "runs").glob("*.json")).read_text())
    assert record["status"] == "ok" and record["model"]["use_safetensors"] is False
    assert "pytorch_model.bin" in record["model"]["weights_sha256"]


def test_string_labels_are_mapped_and_said(capsys, base, tmp_path, in_process):
    strings = TRAIN.assign(label=["positive", "negative"] * 3)
    folder = write(tmp_path / "strings", strings, strings)
    assert compare.main([*base, "--data-dir", str(folder)]) == 0
    assert "labels are strings: mapped 'negative'→0, 'positive'→1" in capsys.readouterr().out


def test_eval_limit_above_the_test_set_is_clamped_and_said(capsys, base, tweets_dir, in_process):
    assert compare.main([*base, "--data-dir", str(tweets_dir), "--eval-limit", "5000"]) == 0
    out = capsys.readouterr().out
    assert "--eval-limit 5000 exceeds the 90 test rows: using all of them" in out


def test_report_skips_a_corrupt_record_naming_it(capsys, base, tweets_dir, tmp_path, in_process):
    assert compare.main([*base, "--data-dir", str(tweets_dir), "--eval-limit", "12"]) == 0
    bad = tmp_path / "results" / "tweets" / "runs" / "broken.json"
    bad.write_text('{"status": "ok", "config": ')  # cut off mid-write by something else
    capsys.readouterr()
    assert report.main(["--results", str(tmp_path / "results")]) == 0
    captured = capsys.readouterr()
    assert f"warning: skipping {bad}: not JSON: " in captured.err and "| head " in captured.out
