"""`runners.predict` on real-world input: blank, multi-line and long texts, files of every format and their mistakes,
and the JSON-lines output, on one run of the tiny GPT-2 kept by `--save-models`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from runners import predict
from runners.predict import shown


@pytest.fixture(scope="module")
def kept(tmp_path_factory, tiny_model_dir, tweets_dir):
    """The folder of one LoRA run kept by --save-models."""
    from runners import compare
    from runners.execute.serial import InProcessExecutor

    tmp = tmp_path_factory.mktemp("predict")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEFT_LAB_CACHE", str(tmp / "cache"))
        mp.setattr(compare, "Executor", InProcessExecutor)
        assert compare.main(["--methods", "lora", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir),
                             "--budget", "32samples", "--batch-size", "16", "--eval-limit", "30", "--quiet",
                             "--results", str(tmp / "results"), "--save-models", str(tmp / "models")]) == 0
    (folder,) = (tmp / "models").iterdir()
    return folder


def call(capsys, *argv) -> tuple[int, list[str], list[str]]:
    """Exit code, stdout lines and stderr lines of `python -m runners.predict ARGV`."""
    code = predict.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def rows(out: list[str]) -> list[tuple[str, list[str], str]]:
    """(label, probabilities as printed, text as shown) of each table line after the header."""
    assert out[0] == "label\tp(negative)\tp(neutral)\tp(positive)\ttext"
    parsed = []
    for line in out[1:]:
        label, *proba, text = line.split("\t")
        assert len(proba) == 3, line
        parsed.append((label, proba, text))
    return parsed


def test_an_empty_text_alone_is_one_line_and_exit_2(kept, capsys):
    for blank, why in (("", "empty"), ("  \t", "whitespace only")):
        code, out, err = call(capsys, kept, blank)
        assert (code, out) == (2, [])
        assert err == [f"error: no text to classify: the one text given (argument 1) is {why}"]
    code, out, err = call(capsys, kept, "", " ")
    assert (code, out, len(err)) == (2, [], 1) and err[0].startswith("error: no text to classify: all 2 texts")


def test_blank_texts_among_others_are_skipped_with_a_warning_and_change_nothing(kept, capsys):
    code, out, err = call(capsys, kept, "what a lovely day", "", "   ", "I hate rainy days")
    assert code == 0
    assert err == ["warning: skipped text 2 (argument 2): empty",
                   "warning: skipped text 3 (argument 3): whitespace only"]
    alone = [call(capsys, kept, text)[1] for text in ("what a lovely day", "I hate rainy days")]
    # The header, then each line as when predicted alone (both texts are 4 tokens: in bf16, padding to a longer
    # neighbour could move the last digits, blank texts or not).
    assert out == [alone[0][0], alone[0][1], alone[1][1]]
    with pytest.raises(ValueError, match="text 2 is empty"):  # the function itself never predicts from padding
        predict.predict(kept, ["a", ""])


def test_a_text_with_line_breaks_and_tabs_is_one_escaped_line(kept, capsys):
    code, out, _ = call(capsys, kept, "line one\nline two\r\n", "a\ttab", "para\u2028graph")
    assert code == 0 and len(out) == 4
    assert [r[2] for r in rows(out)] == ["line one\\nline two\\r\\n", "a\\ttab", "para\\u2028graph"]


def test_a_long_text_is_cut_for_display_and_classified_whole(kept, capsys):
    long = "a calm and ordinary sentence " * 3 + "I hate this awful terrible day " * 1700  # ~53,000 characters
    code, out, _ = call(capsys, kept, long)
    (label, proba, text), = rows(out)
    assert code == 0 and len(text) == 80 and text == long[:79] + "…"
    assert proba == [f"{v:.4f}" for v in predict.predict(kept, [long])[0]]
    assert not np.array_equal(predict.predict(kept, [long]), predict.predict(kept, [long[:79]]))  # not the cut text
    assert rows(call(capsys, kept, long, "--width", "20")[1])[0][2] == long[:19] + "…"
    assert rows(call(capsys, kept, long, "--width", "0")[1])[0][2] == long
    assert rows(call(capsys, kept, "short", "--width", "20")[1])[0][2] == "short"
    assert call(capsys, kept, "x", "--width", "-3")[2] == ["error: --width '-3': expected a number of characters, "
                                                            "0 for whole texts"]


def test_the_display_cuts_between_escapes():
    assert shown("ab\ncd", 4) == "ab…" and shown("ab\ncd", 6) == "ab\\ncd" and shown("abcdef", 6) == "abcdef"
    assert shown("x\x00y", 0) == "x\\x00y" and shown("back\\slash", 0) == "back\\slash"


def test_a_csv_without_the_text_column_is_refused_naming_its_columns(kept, capsys, tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text("tweet,id\nwhat a lovely day,1\n\"NA, said I\",2\n")
    code, out, err = call(capsys, kept, "--file", path)
    assert (code, out) == (2, [])
    assert err == [f"error: {path} has no column 'text': its columns are 'tweet', 'id'; name one with --text-column"]
    code, out, err = call(capsys, kept, "--file", path, "--text-column", "tweet")
    assert code == 0 and err == [] and [r[2] for r in rows(out)] == ["what a lovely day", "NA, said I"]
    path.write_text("tweet,id\nwhat a lovely day, truly,1\n")
    assert call(capsys, kept, "--file", path, "--text-column", "tweet")[2] == [
        f"error: {path} line 2 has 3 fields where the header has 2: quote texts that hold a comma"]


def test_mistakes_in_the_file_are_one_line_naming_it(kept, capsys, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncafé au lait\n".encode("latin-1"))
    cases = {
        latin: f"error: {latin} is not UTF-8 text (byte 0xe9 on line 2): save it as UTF-8",
        tmp_path / "gone.csv": f"error: {tmp_path / 'gone.csv'}: no such file",
        tmp_path: f"error: {tmp_path} is a folder, not a file of texts",
        tmp_path / "t.xlsx": f"error: {tmp_path / 't.xlsx'}: cannot read .xlsx: name it .csv, .tsv, .jsonl, "
                             ".parquet, .txt",
    }
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    for path, line in cases.items():
        assert call(capsys, kept, "--file", path) == (2, [], [line])
    code, out, err = call(capsys, kept, "--file", bad)
    assert (code, out, len(err)) == (2, [], 1) and err[0].startswith(f"error: cannot read {bad} as parquet: ")
    code, _, err = call(capsys, kept, "x", "--text-column", "tweet")
    assert (code, err) == (2, ["error: --text-column names a column of --file: give --file too"])


def test_every_file_format_gives_the_same_predictions(kept, capsys, tmp_path):
    texts = ["what a lovely day", "I hate mondays, really", "the meeting is at noon"]
    frame = pd.DataFrame({"id": [1, 2, 3], "text": texts})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    expected = call(capsys, kept, *texts)[1]
    for suffix in ("csv", "tsv", "jsonl", "parquet", "txt"):
        assert call(capsys, kept, "--file", tmp_path / f"t.{suffix}") == (0, expected, []), suffix


def test_blank_rows_of_a_file_are_named_by_their_line(kept, capsys, tmp_path):
    (tmp_path / "t.txt").write_text("good\n\nbad\n  \n")
    code, out, err = call(capsys, kept, "first", "--file", tmp_path / "t.txt")
    assert code == 0 and len(out) == 4
    assert err == ["warning: skipped text 3 (t.txt line 2): empty",
                   "warning: skipped text 5 (t.txt line 4): whitespace only"]
    (tmp_path / "t.jsonl").write_text('{"text": "good"}\n\n{"text": null}\n{"other": 1}\n')
    code, out, err = call(capsys, kept, "--file", tmp_path / "t.jsonl")
    assert code == 0 and err == ["warning: skipped text 2 (t.jsonl line 3): missing",
                                 "warning: skipped text 3 (t.jsonl line 4): missing"]
    (tmp_path / "many.txt").write_text("good\n" + "\n" * 15)
    err = call(capsys, kept, "--file", tmp_path / "many.txt")[2]
    assert len(err) == 11 and err[-1] == "warning: skipped 5 more blank texts (--jsonl names each)"


def test_jsonl_gives_one_object_per_text_given_in_order(kept, capsys):
    code, out, _ = call(capsys, kept, "what a lovely day", "", "two\nlines", "--jsonl")
    records = [json.loads(line) for line in out]
    assert code == 0 and [r["index"] for r in records] == [1, 2, 3]
    assert [r["text"] for r in records] == ["what a lovely day", "", "two\nlines"]
    assert [r["skipped"] for r in records] == [None, "empty", None]
    assert records[1] == {"index": 2, "source": "argument 2", "label": None, "probabilities": None,
                          "skipped": "empty", "text": ""}
    expected = predict.predict(kept, ["what a lovely day", "two\nlines"])
    for r, p in zip([records[0], records[2]], expected):
        assert list(r["probabilities"]) == ["negative", "neutral", "positive"]
        assert list(r["probabilities"].values()) == pytest.approx(p.tolist(), abs=1e-6)
        assert r["label"] == ["negative", "neutral", "positive"][int(p.argmax())]
