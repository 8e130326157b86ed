"""`python -m runners.predict DIR/<run_id> "some text" ...`: classify texts with a model kept by `--save-models`.

The saved folder is loaded as a user would load it (the whole model with transformers, or the base with peft's
adapter or the trained tensors over it: `Method.load_saved`), texts are tokenized as the run's were, and each line
printed is the label, the class probabilities in label order, and the text. The forward computes in the run's
precision (bf16 autocast where the device has it, as the run's evaluation did).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from runners.errors import UserError
from runners.serving import MANIFEST


def load(folder: Path, device: str = "cpu") -> tuple[torch.nn.Module, dict, object]:
    """The saved model (eval mode), its manifest and the base model's tokenizer."""
    from transformers.utils import logging as hf_logging

    from methods import ModelContext, load_plugin, parse_spec
    from runners.models import load_tokenizer

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
    ctx = ModelContext(manifest["base_model"], device=torch.device(device), **manifest["load"])
    return method.load_saved(folder, ctx), manifest, load_tokenizer(manifest["base_model"])


@torch.inference_mode()
def predict(folder: Path, texts: list[str], device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """Class probabilities (n × K) of `texts` from the run saved in `folder`, computed in the run's precision."""
    from runners.batches import Collator, TokenizedSplit
    from runners.train import autocast_for

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runners.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a folder written by --save-models: DIR/<run_id>")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a csv with a `text` column (or one column) of texts to classify")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args(argv)
    try:
        texts = list(args.texts)
        if args.file:
            frame = pd.read_csv(args.file)
            texts += frame["text" if "text" in frame else frame.columns[0]].astype(str).tolist()
        if not texts:
            raise UserError("no text to classify: give texts or --file")
        proba = predict(Path(args.run), texts, args.device)
        names = json.loads((Path(args.run) / MANIFEST).read_text())["label_names"]
    except (UserError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("label\t" + "\t".join(f"p({n})" for n in names) + "\ttext")
    for text, p_row in zip(texts, proba):
        print(f"{names[int(p_row.argmax())]}\t" + "\t".join(f"{v:.4f}" for v in p_row) + f"\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
