"""Resolve `--model` (hub id or local folder) to a local folder of safetensors weights, and name it exactly."""
from __future__ import annotations

from pathlib import Path

from runners.environment import file_sha256
from runners.errors import UserError

_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]  # config, weights, tokenizer; never pickles


def resolve_model(name: str, allow_pickle: bool = False) -> dict:
    """The model's identity: what was asked for, the local folder, weight hashes and its shape.

    Weights load from safetensors only; a folder holding just pickle `*.bin` files is refused unless `allow_pickle`
    (unpickling runs code from the file). Remote code is never trusted.
    """
    from transformers import AutoConfig

    folder = Path(name).expanduser()
    if not folder.is_dir():
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise UserError(f"--model {name}: no such folder")
        folder = _download(name)
    if not (folder / "config.json").exists():
        raise UserError(f"--model {name}: no config.json in {folder}")
    weights, safetensors = sorted(folder.glob("*.safetensors")), True
    if not weights:
        pickles = sorted(folder.glob("*.bin"))
        if pickles and not allow_pickle:
            raise UserError(f"--model {name}: only pickle weights ({pickles[0].name}) in {folder}; loading a pickle "
                            f"can run code from it: convert to safetensors, or pass --allow-pickle if you trust it")
        if not pickles:
            raise UserError(f"--model {name}: no *.safetensors weights in {folder}")
        weights, safetensors = pickles, False
    config = AutoConfig.from_pretrained(folder)
    architecture = {k: getattr(config, k) for k in ("model_type", "n_layer", "n_head", "n_embd", "vocab_size")
                     if hasattr(config, k)}
    return {
        "name": name,
        "path": str(folder.resolve()),
        "weights_sha256": {w.name: file_sha256(w) for w in weights},
        "use_safetensors": safetensors,
        "n_positions": getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None),
        "architecture": architecture,
    }


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # GPT-2 has no pad token: pad with eos, as is standard
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except Exception as e:  # offline, unknown repo, gated: one line with the cause and the way out
        raise UserError(f"--model {repo_id}: could not fetch from the hub ({type(e).__name__}); "
                        f"offline, pass a local folder with config.json, tokenizer files and *.safetensors") from None
