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



def write_text(folder, **files):
    """Files written as given, byte for byte: the cases pandas would not write (an empty cell, a broken line)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".")).write_text(text)
    return folder


CSV = "text,label\ngood,pos\nbad,neg\nfine,neutral\nawful,neg\ngreat,pos\nmeh,neutral\n"
INTEGERS = CSV.replace(",pos", ",1").replace(",neg", ",0").replace(",neutral", ",2")


@pytest.mark.parametrize("kind", ["csv-strings", "csv-integers", "parquet-strings", "parquet-integers", "jsonl",
                                  "test-file"])
def test_a_missing_label_names_the_file_the_column_and_the_rows(capsys, base, tmp_path, kind):
    folder = tmp_path / kind
    if kind == "csv-strings":  # labels pos/neg/neutral, one cell empty
        write_text(folder, train_csv=CSV.replace("fine,neutral", "fine,"), test_csv=CSV)
    elif kind == "csv-integers":
        write_text(folder, train_csv=INTEGERS.replace("fine,2", "fine,"), test_csv=INTEGERS)
    elif kind.startswith("parquet"):
        labels = ["pos", "neg", None] * 2 if kind.endswith("strings") else [1, 0, None] * 2
        own = {"label": "sentiment"}  # named by --label-column, and named so in the message
        write(folder, TRAIN.assign(label=labels).rename(columns=own), TRAIN.rename(columns=own))
    elif kind == "jsonl":
        write_text(folder, train_jsonl="".join(json.dumps({"text": t, "label": [1, 0, None][i % 3]}) + "\n"
                                               for i, t in enumerate(TRAIN.text)), test_csv=INTEGERS)
    else:
        strings = TRAIN.assign(label=["pos", "neg"] * 3)
        write(folder, strings, strings.assign(label=["pos", "neg", "pos", None, "neg", "pos"]))
    column = ["--label-column", "sentiment"] if kind.startswith("parquet") else []
    err = one_line_error(capsys, [*base, "--data-dir", str(folder), *column])
    file, rows = {"csv-strings": ("train.csv", "row 3 (data rows counted from 1, after the header)"),
                  "csv-integers": ("train.csv", "row 3 (data rows counted from 1, after the header)"),
                  "test-file": ("test.parquet", "row 4 (data rows counted from 1)")}.get(
        kind, (f"train.{kind.partition('-')[0]}", "rows 3, 6 (data rows counted from 1)"))
    name = "sentiment" if column else "label"
    assert err == f"error: {folder / file}: label column {name!r} is empty in {rows}: every row needs a label"


def test_a_file_without_rows_says_so(capsys, base, tmp_path):
    header_only = write_text(tmp_path / "header-only", train_csv="text,label\n", test_csv=CSV)
    assert one_line_error(capsys, [*base, "--data-dir", str(header_only)]) == \
        f"error: {header_only / 'train.csv'} has no rows (only a header: text,label)"
    empty = write_text(tmp_path / "empty", train_csv=CSV, test_jsonl="")
    assert one_line_error(capsys, [*base, "--data-dir", str(empty)]) == \
        f"error: {empty / 'test.jsonl'} is empty (0 bytes)"
    no_rows = write(tmp_path / "no-rows", TRAIN.iloc[:0])
    assert one_line_error(capsys, [*base, "--data-dir", str(no_rows)]) == \
        f"error: {no_rows / 'train.parquet'} has no rows"


def test_label_names_that_do_not_fit_are_refused(capsys, base, tmp_path):
    named = write(tmp_path / "named", TRAIN.assign(label_text=["good", "bad"] * 3))
    strings = write(tmp_path / "strings", TRAIN.assign(label=["pos", "neg"] * 3))
    for folder, names, message in [
        (named, "bad,meh,good", "error: --label-names gives 3 names (bad, meh, good) but the labels run 0..1: give "
                                "exactly 2, one per label"),
        (named, "bad", "error: --label-names gives 1 name (bad) but the labels run 0..1: give exactly 2, one per "
                       "label"),
        (named, "bad,bad", "error: --label-names bad,bad gives 'bad' twice: each label needs its own name"),
        (strings, "negative,positive", "error: --label-names negative,positive is not the set of the data's string "
                                       "labels (neg, pos): string labels name themselves, so --label-names may only "
                                       "give their order"),
    ]:
        assert one_line_error(capsys, [*base, "--data-dir", str(folder), "--label-names", names]) == message


def test_other_bad_cells_and_files(capsys, base, tmp_path):
    rows = "(data rows counted from 1, after the header)"
    cases = {
        "fraction": (lambda d: write_text(d, train_csv=INTEGERS.replace(",2", ",1.5"), test_csv=INTEGERS),
                     f"train.csv: label column 'label' has 1.5, not an integer, in rows 3, 6 {rows}: labels must be "
                     f"integers 0..K-1 or strings"),
        "infinite": (lambda d: write(d, TRAIN.assign(label=[1, 0, float("inf"), 0, 1, 0])),
                     "label column 'label' has inf, not an integer, in row 3 (data rows counted from 1)"),
        "stray-label": (lambda d: write(d, TRAIN.assign(label=[1, 0, 1, 0, 1, 10**11])),
                        "label 100000000000 in row 6 (data rows counted from 1) would make 100000000001 classes "
                        "(labels run 0..K-1), more than its 6 rows: number the classes from 0"),
        "kinds-differ": (lambda d: write(d, test=TRAIN.assign(label=["pos", "neg"] * 3)),
                         "train.parquet has integer labels but"),
        "a-mapping": (lambda d: write(d, TRAIN.assign(label=[{"y": i % 2} for i in range(6)])),
                      "train.parquet: column 'label' holds mappings (row 1, counted from 1: {'y': 0}): labels must "
                      "be integers or strings"),
        "lists-of-text": (lambda d: write(d, TRAIN.assign(text=[[t] for t in TRAIN.text])),
                          "column 'text' holds lists (row 1, counted from 1: ['good']): texts must be strings"),
        "two-label-columns": (lambda d: write_text(d, train_csv=CSV.replace("text,label", "text,label,label")
                                                   .replace("\n", ",x\n").replace("label,x", "label"),
                                                   test_csv=CSV),
                              "train.csv has 2 columns named 'label': rename the others (the reader would quietly "
                              "take the first)"),
        "broken-jsonl": (lambda d: write_text(d, train_jsonl='{"text": "good", "label": 1}\n{"text": "bad", "lab\n',
                                              test_csv=INTEGERS),
                         "train.jsonl as jsonl: line 2 is not JSON: Unterminated string starting at (column 17)"),
        "one-of-a-class": (lambda d: write(d, TRAIN.assign(label=[1, 0, 1, 0, 1, 2])),
                           "train has only 1 row of class '2' (label 2): holding out a stratified validation split "
                           "needs at least 2 rows of each class"),
    }
    for name, (make, message) in cases.items():
        folder = tmp_path / name
        make(folder)
        assert message in one_line_error(capsys, [*base, "--data-dir", str(folder)]), name
    same = ["--data-dir", str(write(tmp_path / "same")), "--text-column", "label"]
    assert one_line_error(capsys, [*base, *same]) == "error: --text-column and --label-column both name 'label': " \
                                                    "the texts and the labels are two different columns"
    assert one_line_error(capsys, [*base, "--data-dir", str(tmp_path / "same"), "--eval-limit", "1"]) == \
        "error: --eval-limit 1 is below the 2 classes: a stratified subset needs one row of each"

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


def test_limits_above_the_data_are_clamped_and_said(capsys, base, tweets_dir, in_process):
    assert compare.main([*base, "--data-dir", str(tweets_dir), "--eval-limit", "5000", "--train-limit", "5000"]) == 0
    out = capsys.readouterr().out
    assert "--eval-limit 5000 exceeds the 90 test rows: using all of them" in out
    assert "--train-limit 5000 exceeds the 228 training rows (after holding out validation): using all of them" in out


def test_report_skips_a_corrupt_record_naming_it(capsys, base, tweets_dir, tmp_path, in_process):
    assert compare.main([*base, "--data-dir", str(tweets_dir), "--eval-limit", "12"]) == 0
    bad = tmp_path / "results" / "tweets" / "runs" / "broken.json"
    bad.write_text('{"status": "ok", "config": ')  # cut off mid-write by something else
    capsys.readouterr()
    assert report.main(["--results", str(tmp_path / "results")]) == 0
    captured = capsys.readouterr()
    assert f"warning: skipping {bad}: not JSON: " in captured.err and "| head " in captured.out
