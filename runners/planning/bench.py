"""What the bench measures on, per model: the shape's folder (built once in the cache) or the checkpoint, its
config, the data split and tokenized as our runs read it, and the job fields every run on it shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.core.errors import UserError
from runners.job.spec import Shared
from runners.planning import plan


@dataclass
class Bench:
    """One model of the bench: a shape (`name`) or a checkpoint, resolved with its data."""

    name: str | None  # the shape's name; None for a checkpoint (--model)
    title: str  # how the table names it
    describe: str  # the header's line about it
    model: dict  # runners.data.models.resolve_model's identity
    config: Any  # its transformers config
    splits: Any  # runners.data.splits.Splits
    tokens: Path
    pad_id: int
    max_length: int
    samples: int
    source_name: str
    common: Shared


def parse_samples(text: str, shapes: list[str]) -> dict[str | None, int]:
    """`--samples`: N for every model, SHAPE=N for one ({None: default, shape: n})."""
    found: dict[str | None, int] = {None: 256}
    for part in filter(None, text.split(",")):
        name, eq, value = part.rpartition("=")
        if eq and name not in shapes:
            raise UserError(f"--samples {part}: {name} is not among the shapes measured ({', '.join(shapes)})")
        try:
            found[name or None] = int(value)
        except ValueError:
            raise UserError(f"--samples must be N or SHAPE=N, comma-separated, got {part!r}") from None
        if found[name or None] < 1:
            raise UserError(f"--samples must be at least 1, got {part!r}")
    return found


def prepare(args, shape: str | None, samples: int) -> Bench:
    """Resolve one model of the bench (`shape`, or `args.model` where None) and its data, as our runs read them."""
    from transformers import AutoConfig

    from runners.data.batches import default_cache_dir, tokenize_cached
    from runners.data.models import load_tokenizer, resolve_model
    from runners.data.shapes import SHAPES, model_shape, vocab_note
    from runners.data.sources import resolve_source
    from runners.data.splits import load_splits
    from runners.settings.config import RunConfig

    cache = Path(default_cache_dir()).expanduser()
    if shape:
        print(f"{shape}: building {SHAPES[shape].title}'s shape (random weights, once per cache) ...", flush=True)
    model = resolve_model(str(model_shape(shape, args.tokenizer, cache)) if shape else args.model)
    folder = model["path"]
    config = AutoConfig.from_pretrained(folder)
    source = resolve_source(args.dataset, args.data_dir)
    max_length = args.max_length or min(source.default_max_length, model["n_positions"] or source.default_max_length)
    splits = load_splits(source, val_fraction=0.05, train_limit=None, eval_limit=64, seed=RunConfig.split_seed,
                         log=lambda *_: None)  # the split the measured runs' RunConfig names (its default)
    tokenizer = load_tokenizer(folder)
    tokens = tokenize_cached({"train": splits.train, "validation": splits.validation, "test": splits.test},
                             tokenizer, max_length, {"tokenizer": folder, "data": splits.identity["content_sha256"]},
                             cache)
    common = plan.common_job(model, splits, tokenizer.pad_token_id, tokens, "python -m runners.bench", quiet=True)
    title = f"{SHAPES[shape].title} shape, random weights" if shape else args.model
    params = _parameters(config, splits.num_labels)
    dims = _dims(config)
    describe = (f"`{folder}`; {config.model_type}, {dims}, "
                + (vocab_note(shape, len(tokenizer)) if shape else f"vocabulary {config.vocab_size:,}")
                + f"; {params / 1e6:,.1f}M parameters with a {splits.num_labels}-class head; max_length "
                  f"{max_length}; {samples} training samples per measurement")
    return Bench(shape, title, describe, model, config, splits, tokens, tokenizer.pad_token_id, max_length, samples,
                 source.name, common)


def _dims(config) -> str:
    from runners.measure.peaks import Dims

    m = Dims.of(config)
    heads = f"{m.heads} heads" + (f" ({m.kv_heads} key-value)" if m.kv_heads != m.heads else "")
    return (f"{m.layers} layers × {m.d} wide, {heads} of {m.head_dim}, MLP {m.intermediate}"
            + (" gated" if m.gated else ""))


def _parameters(config, num_labels: int) -> int:
    """The parameters of the model with its classification head, counted on the meta device (no memory, no time)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    values = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}  # sized by num_labels
    config = type(config).from_dict({**values, "num_labels": num_labels})
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())
