"""A comparison ends with its verdict, a table that fits a terminal, and the paths of the full files."""
from __future__ import annotations

import pandas as pd

from runners import compare
from runners.analysis import terminal

LONG = "lora:r=4:alpha=8:dropout=0.1:targets=c_attn+c_proj"


def test_compare_prints_the_verdict_a_table_that_fits_and_where_the_files_are(tiny_model_dir, tweets_dir, cache_dir,
                                                                             capsys, in_process, tmp_path):
    argv = ["--methods", f"head,{LONG}", "--model", str(tiny_model_dir), "--data-dir", str(tweets_dir),
            "--budget", "4steps", "--batch-size", "16", "--eval-limit", "12", "--seeds", "0,1", "--quiet",
            "--results", str(tmp_path / "results")]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    tail = out[out.index("\nExperiment ") + 1:].splitlines()
    # every line fits, but the one naming the tables' folder: a path is as long as it is (pytest's, under xdist)
    fitted = [line for line in tail if not line.startswith("Full tables: ")]
    assert max(map(len, fitted)) <= terminal.WIDTH, max(fitted, key=len)
    assert tail[0].startswith("Experiment ") and tail[1].startswith("Verdict: ")
    header = next(line for line in tail if line.startswith("method "))
    for column in ("test acc [95% CI]", "peak mem (MiB)", "train time (s)"):
        assert column in header
    assert "| " not in out and "**Cells:**" not in out  # the markdown section stays in the files
    assert f"Full tables: {tmp_path / 'results' / 'tweets'}/comparison.md, comparison.csv" in tail
    assert any(line.startswith(f"Plots in {tmp_path / 'results' / 'tweets'}/plots/:") for line in tail), "\n".join(tail)
    assert any(line.startswith(f"Page: {tmp_path / 'results' / 'tweets'}/index.html") for line in tail)
    md = (tmp_path / "results" / "tweets" / "comparison.md").read_text()
    assert f"| {LONG} " in md and "**Verdict:** " in md  # the files keep the whole spec and every column


def frame(**more) -> pd.DataFrame:
    df = pd.DataFrame({"method": ["lora", "x" * 60, "tfidf"], "kind": ["method", "method", "baseline"],
                       "test acc": [0.9, 0.8, 0.7], "test acc ci_lo": [0.85, float("nan"), 0.6],
                       "test acc ci_hi": [0.95, float("nan"), 0.8], "top group": [True, False, False],
                       "peak mem (MiB)": [1000.0, 2000.0, 10.0], "peak mem (MiB) center": [990.0, 1990.0, 9.0],
                       "train time (s)": [3.0, 4.0, 1.0], "trainable %": [0.8, 100.0, None],
                       "status": ["ok", "seed 1: oom: CUDA out of memory; seed 2: failed: ValueError: x", "ok"],
                       **more})
    df.attrs["verdict"] = "lora is best. " * 20
    return df


def test_the_view_marks_the_top_group_cuts_long_names_and_keeps_what_fits():
    text = terminal.view(frame(), "e1", width=120)
    lines = text.splitlines()
    assert lines[0] == "Experiment e1" and lines[1].startswith("Verdict: lora is best.")
    assert max(map(len, lines)) <= 120
    assert "0.9000 [0.850, 0.950] *" in text and "0.8000 " in text  # one seed: no interval
    assert "x" * 31 + "…" in text and "tfidf (baseline)" in text and "990" in text
    assert "seed 1 oom, seed 2 failed" in text
    assert lines[-1].startswith("* top group by test accuracy")
    narrow = terminal.table(frame(), width=80)
    assert max(map(len, narrow.splitlines())) <= 80 and "trainable %" not in narrow  # what does not fit is left out
    assert "test acc [95% CI]" in narrow


def test_all_tied_marks_nothing():
    df = frame()
    df["top group"] = [True, True, False]
    assert " *" not in terminal.table(df) and "top group" not in terminal.view(df, "e1")


def test_the_budgets_side_by_side_keep_their_sentence_and_table_where_it_fits():
    section = ("## Across budgets (4e11flops, 1.6e12flops)\n\nExperiments a, b: the same comparison at each budget. "
               "The best method is the same at every budget: at 4e11flops, lora.\n\n"
               "| method   | test acc @ 4e11flops   | test acc @ 1.6e12flops   |\n"
               "|----------|------------------------|--------------------------|\n"
               "| lora     | **0.5567 [0.414, 0.699]** | **0.6900 [0.680, 0.700]** |\n"
               "| head     | 0.5213 [0.471, 0.572]  | 0.5713 [0.504, 0.639]    |\n\n"
               "- **Cells:** test accuracy, mean over seeds\n\n![accuracy_vs_budget](plots/budgets-f-a.png)\n")
    text = terminal.across_budgets(section)
    lines = text.splitlines()
    assert lines[0] == "Across budgets (4e11flops, 1.6e12flops)" and lines[1].startswith("Experiments a, b: ")
    assert "| lora     | 0.5567 [0.414, 0.699] * | 0.6900 [0.680, 0.700] * |" in lines
    assert lines[-1] == "* that budget's top group" and "Cells" not in text and "![" not in text
    narrow = terminal.across_budgets(section, width=60).splitlines()
    assert narrow[0].startswith("Across budgets") and not any(line.startswith("|") for line in narrow)
