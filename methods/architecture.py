"""What a method needs to know about a model's architecture, found from the model itself: its kind (decoder or
encoder), its blocks, the modules that play each role in a block (attention projections, attention output, MLP in and
out, norms), its classification head, and what its body's forward takes. Methods say what they adapt by role
(`attention`, `mlp`, `kv`...); `resolve` turns roles into the module names peft or a freeze takes, for GPT-2 as for
Llama, Qwen, GPT-NeoX, OPT, BERT, RoBERTa, ModernBERT or DeBERTa.

Where the names come from: the model's own module tree (every linear layer inside a block, and its place in it:
under the attention or not), classified by the small table below, which the libraries leave to each model (peft's
per-architecture mappings name a few defaults, not roles: tests/test_architectures.py holds this table to them);
the head is the classification model's own modules beside its body (`base_model_prefix`); decoder or encoder from
transformers' own mappings (a model with a masked-LM head is an encoder). `describe` works on the meta device, so a
model's architecture is known from its config before any weight loads.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# A linear layer's role in a block, from its name (its last part) and whether it sits under the attention.
QUERY = ("q_proj", "query", "query_proj", "q_lin")
KEY = ("k_proj", "key", "key_proj", "k_lin")
VALUE = ("v_proj", "value", "value_proj", "v_lin")
FUSED_QKV = ("c_attn", "query_key_value", "Wqkv", "qkv_proj", "W_pack", "qkv")
ATTENTION_OUT = ("c_proj", "o_proj", "dense", "out_proj", "Wo", "out_lin")  # under the attention
MLP_IN = ("c_fc", "gate_proj", "up_proj", "fc1", "dense_h_to_4h", "Wi", "lin1", "w1", "w3", "gate_up_proj")
MLP_OUT = ("down_proj", "fc2", "dense_4h_to_h", "lin2", "w2")
MLP_OUT_OUTSIDE_ATTENTION = ("c_proj", "Wo", "dense")  # names that are the MLP's output outside the attention
ATTENTION_PARTS = ("attn", "attention", "self_attn", "self_attention")
# The norm on the blocks' output, outside them (GPT-2's ln_f, Llama's norm, OPT's and GPT-NeoX's final_layer_norm,
# ModernBERT's final_norm); an embeddings' norm (BERT's embeddings.LayerNorm) is not one.
FINAL_NORMS = ("ln_f", "norm", "final_layer_norm", "final_norm", "final_layernorm")
BASIC_ROLES = ("q", "k", "v", "qkv", "attention_out", "mlp_in", "mlp_out")
# The roles a method names, each a union of basic ones. `kv` is keys and values, or the fused projection that holds
# them; `qkv` every projection of the attention's input.
ROLES = {
    "q": ("q",), "k": ("k",), "v": ("v",), "kv": ("k", "v", "qkv"), "qkv": ("q", "k", "v", "qkv"),
    "attention_out": ("attention_out",), "attention": ("q", "k", "v", "qkv", "attention_out"),
    "mlp_in": ("mlp_in",), "mlp_out": ("mlp_out",), "mlp": ("mlp_in", "mlp_out"),
}


# GPT-2's key; most models'; ModernBERT's
ACTIVATION_KEYS = ("activation_function", "hidden_act", "hidden_activation")


def activation_of(config) -> tuple[str | None, str | None]:
    """The config key naming the model's activation, and the activation (None, None where the config names none)."""
    for key in ACTIVATION_KEYS:
        if isinstance(getattr(config, key, None), str):
            return key, getattr(config, key)
    return None, None


class ArchitectureError(ValueError):
    """A method cannot find what it adapts in this architecture; the message is one line meant for the user."""


def role_of(relative: str) -> str | None:
    """The basic role of a linear layer named `relative` inside a block (`attn.c_attn`, `mlp.down_proj`,
    `attention.output.dense`), or None where the table knows no such name."""
    parts = relative.split(".")
    leaf, parents = parts[-1], parts[:-1]
    in_attention = any(p in ATTENTION_PARTS for p in parents)
    if leaf in FUSED_QKV:
        return "qkv"
    if in_attention:
        for role, names in (("q", QUERY), ("k", KEY), ("v", VALUE), ("attention_out", ATTENTION_OUT)):
            if leaf in names:
                return role
        return None
    if leaf in MLP_IN or (leaf == "dense" and parents[-1:] == ["intermediate"]):
        return "mlp_in"
    if leaf in MLP_OUT or leaf in MLP_OUT_OUTSIDE_ATTENTION:
        return "mlp_out"
    return None


@dataclass(frozen=True)
class Architecture:
    """A sequence classifier's architecture, as the methods need it."""

    model_type: str
    kind: str  # "decoder" (scores its last real token) or "encoder" (scores a pooled first token)
    body: str  # the attribute holding the body (`transformer`, `model`, `bert`...)
    blocks: str  # the full name of the ModuleList of blocks (`transformer.h`, `model.layers`...)
    depth: int
    linears: dict[str, str] = field(default_factory=dict)  # a block's linear layers: relative name -> basic role
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # a block's linear layers: (in, out) features
    norms: tuple[str, ...] = ()  # the full names of every norm module of the body (in the blocks, and its own)
    top: tuple[str, ...] = ()  # the body's modules above its blocks: the final norm, a pooler (BERT's)
    head: tuple[str, ...] = ()  # the classification head: the model's modules beside the body that hold weights
    head_is_linear: bool = False  # the head is one linear layer: its input is the whole feature the body gives
    takes_cache: bool = False  # the body's forward takes a key/value cache (what prefix tuning feeds it)
    gradient_checkpointing: bool = False
    sdpa: bool = True  # transformers runs its attention with torch's scaled_dot_product_attention (not DeBERTa's)
    activation: str | None = None
    conv1d: bool = False  # GPT-2's Conv1D projections store weights (in, out): peft's fan_in_fan_out
    biases: bool = False  # the body has bias terms (BitFit trains them)

    def modules(self, roles: tuple[str, ...]) -> list[str]:
        """The full names of the linear layers that play `roles` in every block, in the model's order."""
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ArchitectureError(f"unknown role {', '.join(map(repr, unknown))}; roles: {', '.join(ROLES)}")
        wanted = {basic for r in roles for basic in ROLES[r]}
        found = [f"{self.blocks}.{i}.{rel}" for i in range(self.depth) for rel, role in self.linears.items()
                 if role in wanted]
        if not found:
            raise ArchitectureError(f"{self.model_type}: no module plays {'+'.join(roles)} in its blocks (its linear "
                                    f"layers: {', '.join(self.linears) or 'none'}); name them with targets=")
        return found

    def summary(self) -> dict:
        """What a record and a table say of the architecture."""
        return {"model_type": self.model_type, "kind": self.kind, "blocks": f"{self.blocks} ×{self.depth}",
                "scores": "its last real token" if self.kind == "decoder" else "its pooled first token",
                "head": list(self.head), "activation": self.activation}

    def top_blocks(self, k: int) -> list[str]:
        """The full names of the top `k` blocks."""
        if not 1 <= k <= self.depth:
            raise ArchitectureError(f"{self.model_type} has {self.depth} blocks: cannot take the top {k}")
        return [f"{self.blocks}.{i}" for i in range(self.depth - k, self.depth)]

    def relative(self, names: list[str]) -> list[str]:
        """`transformer.h.3.attn.c_attn` -> `attn.c_attn`: names as a record shows them, once per block."""
        prefix = self.blocks + "."
        return list(dict.fromkeys(n.removeprefix(prefix).split(".", 1)[1] if n.startswith(prefix) else n
                                  for n in names))


def describe(model: nn.Module) -> Architecture:
    """The architecture of a sequence-classification model (loaded, or built on the meta device)."""
    from torch import nn
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
    from transformers.pytorch_utils import Conv1D

    config = model.config
    body_name = model.base_model_prefix
    body = getattr(model, body_name)
    blocks_name, blocks = _blocks(body)
    first = blocks[0]
    layers = {n: m for n, m in first.named_modules() if isinstance(m, (nn.Linear, Conv1D)) and n}
    linears = {n: role_of(n) for n in layers}
    head = _head(model, body_name)
    norms = tuple(f"{body_name}.{n}" for n, m in body.named_modules() if "norm" in type(m).__name__.lower() and n)
    outside = [(f"{body_name}.{n}", m) for n, m in body.named_modules()
               if n and not f"{body_name}.{n}".startswith(f"{body_name}.{blocks_name}")]
    top = tuple(n for n, m in outside if (n.rsplit(".", 1)[-1] in FINAL_NORMS and "embed" not in n)
                or (n.rsplit(".", 1)[-1] == "pooler" and any(True for _ in m.parameters())))
    head_modules = [dict(model.named_modules())[h] for h in head]
    forward = inspect.signature(body.forward).parameters
    return Architecture(
        model_type=config.model_type,
        kind="encoder" if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "decoder",
        body=body_name, blocks=f"{body_name}.{blocks_name}", depth=len(blocks),
        linears={n: r for n, r in linears.items() if r is not None} | {n: "other" for n, r in linears.items()
                                                                        if r is None},
        shapes={n: _features(m) for n, m in layers.items()},
        norms=norms, top=top, head=tuple(head),
        head_is_linear=len(head_modules) == 1 and isinstance(head_modules[0], nn.Linear),
        takes_cache="past_key_values" in forward or "cache" in forward,
        gradient_checkpointing=bool(getattr(model, "supports_gradient_checkpointing", False)),
        sdpa=bool(getattr(model, "_supports_sdpa", False)),
        activation=activation_of(config)[1],
        conv1d=any(isinstance(m, Conv1D) for m in first.modules()),
        biases=any(n.endswith("bias") for n, _ in body.named_parameters()),
    )


def describe_config(path: str, num_labels: int = 2) -> Architecture:
    """The architecture of the model in `path` (a local folder), from its config alone: built on the meta device,
    so that nothing loads and no memory is taken, whatever the model's size."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path, num_labels=num_labels)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return describe(model)


def sdpa_supported(config) -> bool:
    """Whether transformers' sequence classifier for `config` can run its attention with torch's sdpa kernel."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    return bool(getattr(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)], "_supports_sdpa", False))


def _features(layer: nn.Module) -> tuple[int, int]:
    if hasattr(layer, "in_features"):
        return layer.in_features, layer.out_features
    rows, cols = layer.weight.shape  # GPT-2's Conv1D: (in, out)
    return rows, cols


def _blocks(body: nn.Module) -> tuple[str, nn.Module]:
    """The body's ModuleList of transformer blocks: the longest one (an encoder's `encoder.layer`, a decoder's
    `h` or `layers`, OPT's `decoder.layers`)."""
    from torch import nn

    lists = [(n, m) for n, m in body.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise ArchitectureError(f"{type(body).__name__} has no list of blocks this lab can find")
    return max(lists, key=lambda nm: (len(nm[1]), -nm[0].count(".")))


def _head(model: nn.Module, body_name: str) -> list[str]:
    """The classification head: every module beside the body that holds weights (`score`; `classifier`; `head` and
    `classifier`; `pooler` and `classifier`)."""
    return [name for name, child in model.named_children()
            if name != body_name and any(True for _ in child.parameters())]
