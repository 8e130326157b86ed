"""`python -m runners.predict DIR/<run_id> "some text" ...`: classify texts with a model kept by `--save-models`.

The saved folder is loaded as a user would load it (the whole model with transformers, or the base with peft's
adapter or the trained tensors over it: `Method.load_saved`), texts are tokenized as the run's were (cut at its
max_length), and the forward computes in the run's precision (bf16 autocast where the device has it, as the run's
evaluation did).

Texts come from the arguments, then from --file by its suffix: .txt (one text per line), .csv, .tsv, .jsonl or
.parquet (the --text-column of each row, `text` by default; a file without it is refused, naming its columns).
Texts are numbered from 1 in that order. The rules:

- an empty or whitespace-only text (or a missing value in a file) is skipped: a warning on stderr names its
  number and where it came from (argument, file line or parquet row; the first 10, then a count); if no text is
  left, that is an error.
- the table prints one line per classified text: the label, the class probabilities in label order, and the
  text, with tabs, newlines and other control characters shown escaped (\\t, \\n, ...; a backslash as it is)
  and cut to --width characters with "…". The model is given the whole text (up to the run's max_length tokens).
- --jsonl prints instead one JSON object per text given, skipped ones included, in input order, all keys always:
  index (its number), source (where it came from), label and probabilities ({label name: p}, both null when
  skipped), skipped (null, or why: "empty", "whitespace only", "missing") and text (whole, as given).
- a mistake (no saved run, an unreadable, missing or non-UTF-8 file, a missing column) is one line on stderr
  starting `error: `, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import torch

from runners.core.errors import UserError
from runners.data.texts import Text, gather, warn_skipped
from runners.job.stages.serve import MANIFEST

WIDTH = 80  # characters of each text the table shows, by default


def load(folder: Path, device: str = "cpu") -> tuple[torch.nn.Module, dict, object]:
    """The saved model (eval mode), its manifest and the base model's tokenizer."""
    from transformers.utils import logging as hf_logging

    from methods import ModelContext, load_plugin, parse_spec
    from runners.data.models import load_tokenizer
    from runners.measure import environment as env

    hf_logging.set_verbosity_error()  # "score.weight newly initialised": the saved head replaces it next
    hf_logging.disable_progress_bar()
    # peft still calls transformers' pre-5.x names (is_gradient_checkpointing); nothing for a user to act on.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6", category=FutureWarning)
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise UserError(f"{folder} holds no saved run ({MANIFEST} is missing): save one with "
                        f"`python -m runners.compare ... --save-models DIR`")
    manifest = json.loads((folder / MANIFEST).read_text())
    for plugin in manifest.get("plugins", ()):
        load_plugin(plugin)
    method = parse_spec(manifest["method"]).method
    load = {k: v for k, v in manifest["load"].items() if k != "compute_dtype"}  # this device's, not the run's
    dtype = env.precision(torch.device(device), load.get("bf16", True)).name
    ctx = ModelContext(manifest["base_model"], device=torch.device(device), compute_dtype=dtype, **load)
    return method.load_saved(folder, ctx), manifest, load_tokenizer(manifest["base_model"])


@torch.inference_mode()
def predict(folder: Path, texts: list[str], device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """Class probabilities (n × K) of `texts` from the run saved in `folder`, computed in the run's precision. A
    blank text is refused: with no tokens, it would be classified from padding alone."""
    from runners.data.batches import Collator, TokenizedSplit
    from runners.job.loop import autocast_for

    blank = [i for i, t in enumerate(texts, 1) if not t.strip()]
    if blank:
        raise ValueError(f"text {blank[0]} is empty or whitespace only ({len(blank)} such): leave blank texts out")
    model, manifest, tokenizer = load(folder, device)
    split = TokenizedSplit.from_texts(texts, [0] * len(texts), tokenizer, manifest["max_length"])
    collate = Collator(split, manifest["load"]["pad_token_id"], manifest["padding_side"], torch.device(device))
    out = []
    for start in range(0, len(texts), batch_size):
        batch = collate(np.arange(start, min(start + batch_size, len(texts))))
        batch.pop("labels")
        with autocast_for(torch.device(device), manifest["load"].get("bf16", True)):
            out.append(model(**batch).logits.float().softmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, manifest["load"]["num_labels"]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a folder written by --save-models: DIR/<run_id>")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a file of texts to classify: .txt, .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--text-column", metavar="NAME", help="the column of --file that holds the texts (default: text)")
    p.add_argument("--width", default=str(WIDTH), metavar="N",
                   help=f"characters of each text the table shows, 0 for all (default: {WIDTH})")
    p.add_argument("--jsonl", action="store_true", help="JSON lines for programs, one per text given (see above)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        width = _width(args.width)
        texts = gather(args.texts, args.file, args.text_column)
        kept = [t for t in texts if not t.skipped]
        if not kept:
            raise UserError(_nothing_left(texts, args.file))
        warn_skipped(texts)
        proba = predict(Path(args.run), [t.text for t in kept], args.device)
        names = json.loads((Path(args.run) / MANIFEST).read_text())["label_names"]
    except (UserError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by_index = {t.index: row for t, row in zip(kept, proba)}
    if args.jsonl:
        for t in texts:
            print(json.dumps(_jsonl(t, by_index.get(t.index), names)))  # ASCII: no line breaks a reader may split at
        return 0
    print("label\t" + "\t".join(f"p({n})" for n in names) + "\ttext")
    for t in kept:
        row = by_index[t.index]
        print(f"{names[int(row.argmax())]}\t" + "\t".join(f"{v:.4f}" for v in row) + f"\t{shown(t.text, width)}")
    return 0


def _nothing_left(texts: list[Text], file: str | None) -> str:
    """The one line that says why nothing is classified (no warnings first: this line names the skipped texts)."""
    if len(texts) == 1:
        return f"no text to classify: the one text given ({texts[0].source}) is {texts[0].skipped}"
    if texts:
        return f"no text to classify: all {len(texts)} texts given are blank (empty, whitespace only or missing)"
    return f"no text to classify: {file} holds none" if file else "no text to classify: give texts or --file"


def _width(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise UserError(f"--width {text!r}: expected a number of characters, 0 for whole texts")
    return int(text)


def _jsonl(t: Text, row: np.ndarray | None, names: list[str]) -> dict:
    return {"index": t.index, "source": t.source,
            "label": None if row is None else names[int(row.argmax())],
            "probabilities": None if row is None else {n: round(float(v), 6) for n, v in zip(names, row)},
            "skipped": t.skipped, "text": t.text}


def shown(text: str, width: int) -> str:
    """`text` on one line for the table: control characters escaped (a newline as \\n), cut to `width` characters
    (0: no cut) with "…" where it is longer, never inside an escape."""
    # Escapes only lengthen: the first width + 1 characters decide whether the text is cut.
    pieces = [_escaped(c) for c in (text if width == 0 else text[:width + 1])]
    if width == 0 or sum(map(len, pieces)) <= width:
        return "".join(pieces)
    out, used = [], 0
    for piece in pieces:
        if used + len(piece) > width - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + "…"


def _escaped(c: str) -> str:
    # Cc: tab, newline, carriage return and the like; Zl, Zp: the line and paragraph separators (str.splitlines
    # breaks a line at them too).
    return ascii(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c


if __name__ == "__main__":
    sys.exit(main())
