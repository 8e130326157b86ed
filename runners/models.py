"""Resolve `--model` (hub id or local folder) to a local folder of safetensors weights, and name it exactly."""
from __future__ import annotations

from pathlib import Path

from runners.environment import file_sha256
from runners.errors import UserError

_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]  # config, weights, tokenizer; never pickles


def resolve_model(name: str) -> dict:
    """The model's identity: what was asked for, the local folder, weight hashes and its shape."""
    from transformers import AutoConfig

    folder = Path(name).expanduser()
    if not folder.is_dir():
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise UserError(f"--model {name}: no such folder")
        folder = _download(name)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise UserError(f"--model {name}: no *.safetensors weights in {folder} (pickle checkpoints are not loaded)")
    if not (folder / "config.json").exists():
        raise UserError(f"--model {name}: no config.json in {folder}")
    config = AutoConfig.from_pretrained(folder)
    architecture = {k: getattr(config, k) for k in ("model_type", "n_layer", "n_head", "n_embd", "vocab_size")
                     if hasattr(config, k)}
    return {
        "name": name,
        "path": str(folder.resolve()),
        "weights_sha256": {w.name: file_sha256(w) for w in weights},
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
