"""Classical baselines run through the same worker and records as the methods, on exactly their rows."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from runners import compare

pytest.importorskip("gensim", reason="the w2v baselines need the `baselines` extra: pip install -e '.[baselines]'")


def test_baselines_beside_methods_on_the_same_rows_and_resume(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                             in_process, capsys):
    argv = ["--methods", "head", "--baselines", "tfidf,w2v-logreg", "--model", str(tiny_model_dir), "--data-dir",
            str(tweets_dir), "--budget", "2steps", "--batch-size", "16", "--eval-limit", "30", "--quiet",
            "--results", str(tmp_path)]
    assert compare.main(argv) == 0
    records = {r["method"]["label"]: r for r in
               (json.loads(p.read_text()) for p in (tmp_path / "tweets" / "runs").glob("*.json"))}
    assert set(records) == {"head", "tfidf", "w2v-logreg"}
    rows = {label: r["predictions"]["rows_sha256"] for label, r in records.items()}
    assert len(set(rows.values())) == 1  # every row scored the same test rows
    truth = {r["predictions"]["labels"] for r in records.values()}
    assert len(truth) == 1 and len(truth.pop()) == 30
    for label in ("tfidf", "w2v-logreg"):
        r = records[label]
        assert r["status"] == "ok" and r["method"]["kind"] == "baseline" and r["curve"] == []
        m = r["metrics"]
        assert {"accuracy", "macro_f1", "weighted_f1", "auc_macro", "auc_weighted", "ece"} <= set(m)
        assert r["measurements"]["train_seconds"] > 0 and r["measurements"]["peak_memory_mib"] > 0
    md = (tmp_path / "tweets" / "comparison.md").read_text()
    assert "| tfidf (baseline) " in md and "| w2v-logreg (baseline) " in md
    assert "Against the best classical baseline, " in md
    csv = pd.read_csv(tmp_path / "tweets" / "comparison.csv")
    assert set(csv.loc[csv.kind == "baseline", "method"]) == {"tfidf", "w2v-logreg"}
    capsys.readouterr()
    assert compare.main(argv) == 0  # resume: nothing trains again
    out = capsys.readouterr().out
    assert out.count("ok record exists") == 3 and "training (" not in out


def test_a_bad_baseline_key_is_one_line(tmp_path, tiny_model_dir, tweets_dir, capsys):
    assert compare.main(["--baselines", "tfidf:CC=2", "--model", str(tiny_model_dir), "--data-dir",
                         str(tweets_dir), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown parameter 'CC' for tfidf. Did you mean 'C'?" in err
