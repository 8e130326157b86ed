"""Resolve `--model` (hub id or local folder) to a local folder of safetensors weights, and name it exactly."""
from __future__ import annotations

from pathlib import Path

from runners.core.errors import UserError
from runners.measure.environment import file_sha256

_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]  # config, weights, tokenizer; never pickles
_IDENTITY_FILES = {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "added_tokens.json", "spiece.model", "tokenizer.model"}


def resolve_model(name: str, allow_pickle: bool = False, revision: str | None = None) -> dict:
    """The model's identity: what was asked for, the local folder, weight hashes and its shape.

    Weights load from safetensors only; a folder holding just pickle `*.bin` files is refused unless `allow_pickle`
    (unpickling runs code from the file). Remote code is never trusted.
    """
    from transformers import AutoConfig

    folder, commit = Path(name).expanduser(), None
    if folder.is_dir():
        if revision:
            raise UserError(f"--revision pins a hub model; --model {name} is a local folder")
    else:
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise UserError(f"--model {name}: no such folder")
        folder, commit = _download(name, revision, allow_pickle)
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
    architecture = shape_of(config)
    return {
        "name": name,
        "path": str(folder.resolve()),
        "revision": revision, "commit": commit,  # the hub commit read (None for a local folder)
        "weights_sha256": {w.name: file_sha256(w) for w in weights},
        # the tokenizer and config beside the weights: a change to either alone is a different model
        "files_sha256": {f.name: file_sha256(f) for f in sorted(folder.iterdir()) if f.name in _IDENTITY_FILES},
        "use_safetensors": safetensors,
        "n_positions": getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None),
        "architecture": architecture,
    }


# The shape of any config, by transformers' common names (GPT-2's n_layer, n_embd... map onto them)
SHAPE = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
         "kv_heads": "num_key_value_heads", "intermediate": "intermediate_size", "vocab_size": "vocab_size"}


def shape_of(config) -> dict:
    """`model_type` and the shape a config gives: layers, hidden, heads, key-value heads where fewer than the heads
    (grouped-query attention), intermediate size where stated, vocabulary."""
    shape = {"model_type": config.model_type}
    for name, attr in SHAPE.items():
        value = getattr(config, attr, None)
        if isinstance(value, int) and not (name == "kv_heads" and value == shape.get("heads")):
            shape[name] = value
    return shape


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # GPT-2 (Llama, Qwen...) has no pad token: pad with eos, as is standard
        if tokenizer.eos_token is None:
            raise UserError(f"the tokenizer in {path} names neither a pad nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.pad_from = "eos"
    return tokenizer


def pad_identity(tokenizer) -> dict:
    """The pad token every method of a command pads with (a record's `model.pad_token`): its id, its text, and
    whether the tokenizer names it or it is the eos token standing in."""
    return {"id": tokenizer.pad_token_id, "token": tokenizer.pad_token,
            "from": "eos (the tokenizer names no pad token)" if getattr(tokenizer, "pad_from", None) == "eos"
            else "the tokenizer"}


def _download(repo_id: str, revision: str | None, allow_pickle: bool) -> tuple[Path, str]:
    """Fetch config, tokenizer and safetensors weights (pickles only if allowed and nothing else is there); return
    the local snapshot and the commit it is."""
    from huggingface_hub import HfApi, constants, snapshot_download

    try:
        patterns = list(_HUB_FILES)
        if not constants.HF_HUB_OFFLINE:  # look before downloading: a pickle-only repo is refused up front
            info = HfApi().model_info(repo_id, revision=revision)
            revision = info.sha
            files = [s.rfilename for s in info.siblings or []]
            if not any(f.endswith(".safetensors") for f in files):
                pickles = [f for f in files if f.endswith(".bin")]
                if not pickles:
                    raise UserError(f"--model {repo_id}: no *.safetensors weights in the hub repo")
                if not allow_pickle:
                    raise UserError(f"--model {repo_id}: only pickle weights ({pickles[0]}) in the hub repo; "
                                    f"loading a pickle can run code from it: use a repo with safetensors, or pass "
                                    f"--allow-pickle if you trust it")
                patterns.append("*.bin")
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except UserError:
        raise
    except Exception as e:  # offline, unknown repo, gated: one line with the cause and the way out
        raise UserError(f"--model {repo_id}: could not fetch from the hub ({type(e).__name__}); "
                        f"offline, pass a local folder with config.json, tokenizer files and *.safetensors") from None
    return folder, folder.name  # the hub cache names each snapshot folder by its commit
