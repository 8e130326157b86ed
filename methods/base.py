"""The method contract: hyperparameter dataclasses and the base class every fine-tuning method implements."""
from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from methods.context import ModelContext

if TYPE_CHECKING:  # torch is imported where a model is built: the registry (`--list`, `--help`) loads without it
    import torch
    from torch import nn

    from methods.architecture import Architecture


def hp(default: Any, help: str) -> Any:
    """A hyperparameter field: its default and a one-line hint shown by `--list` and in errors."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class HParams:
    """Hyperparameters every method has. Subclasses add their own and override defaults."""

    lr: float = hp(2e-5, "peak learning rate (AdamW), reached after warmup")
    # The range `--tune-lr` searches, log-spaced; a method states its own and why, in its help line. None: a decade
    # either side of its default rate.
    lr_range: tuple[float, ...] | None = hp(None, "learning rates --tune-lr searches, LO+HI (default: lr/10 to "
                                                  "lr×10)")
    weight_decay: float = hp(0.0, "AdamW decoupled weight decay on trainable weights")
    gradient_checkpointing: bool = hp(False, "recompute activations in backward: less memory, ~1/3 more compute")

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_range is not None:
            lo, hi = (tuple(self.lr_range) + (0.0, 0.0))[:2]
            if len(self.lr_range) != 2 or not 0 < lo < hi:
                raise ValueError(f"lr_range must be two rates LO+HI with 0 < LO < HI, got "
                                 f"{'+'.join(f'{x:g}' for x in self.lr_range)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class Progress:
    """Where training stands, passed to per-step hooks. `fraction` is the share of the budget spent."""

    step: int
    samples: int
    tokens: int
    fraction: float


class Method(ABC):
    """A way of fine-tuning a pretrained model (GPT-2 by default) for sequence classification.

    Before anything loads, the runner asks `applies_to` with the model's architecture (methods.architecture). It then
    calls, in this order: `build` (which calls `load_model`, sets `arch`, enables gradient checkpointing if asked,
    then calls `adapt`), `param_groups` and `make_optimizer` once, and `on_step` after every optimizer step; it
    reads `padding_side` and `wants_example_ids`. What it must know about the method's weights, to count them, to
    size memory and to count FLOPs, it asks through the accounting hooks below (`stored_values_per_element`,
    `weight_kind`, `optimizer_state_bytes`, `unseen_forward_flops`), whose defaults fit an fp32 model trained with
    AdamW. After the test, the serve stage asks the deployment hooks (`deployed`, `save`, `load_saved`,
    `mergeable`, `merge`, `extra_tokens`), whose defaults fit a plain transformers model. Nothing else about a
    method is known to the runner.
    """

    name: ClassVar[str] = ""  # set by @register; the CLI token and registry key
    summary: ClassVar[str] = ""  # one line for `--list` and the README
    Params: ClassVar[type[HParams]] = HParams
    padding_side: ClassVar[str] = "right"  # "left" for methods whose last position must be a real token
    # Substrings of the names of the parameters this method trains, on any architecture; every other parameter stays
    # frozen. A method whose choice depends on the architecture (the head's name, the top blocks) says so in `trains`
    # instead. The contract test holds each method to it.
    trainable: ClassVar[tuple[str, ...]] = ()
    # Distributions, beyond the runner's own, whose versions every record notes (peft for the peft methods).
    packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: HParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.arch: Architecture | None = None  # the loaded model's (methods.architecture), set by `build`

    def applies_to(self, arch: Architecture) -> str | None:
        """Why this method, with its parameters, cannot work on `arch` (one line), or None where it can. Asked before
        anything loads (from the model's config alone), so that a combination that cannot work is refused up front.
        Default: gradient checkpointing needs the model to support it."""
        if self.params.gradient_checkpointing and not arch.gradient_checkpointing:
            return f"{arch.model_type} does not support gradient checkpointing (gradient_checkpointing=true)"
        return None

    def trains(self) -> tuple[str, ...]:
        """Substrings of the names of the parameters this method trains on the model's architecture (`self.arch`).
        Default: `trainable`."""
        return self.trainable

    def modules(self) -> dict[str, list[str]]:
        """The modules the method adapted, by what it did to them (`adapted`, `trained`, `tuned`...), named within a
        block as the record shows them (`attn.c_attn`). Default: none named."""
        return {}

    def load_model(self, ctx: ModelContext) -> nn.Module:
        """Load the pretrained body with a fresh classification head, in fp32, on `ctx.device`."""
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(ctx.path, **ctx.load_kwargs())
        return model.to(ctx.device)

    @abstractmethod
    def adapt(self, model: nn.Module) -> nn.Module:
        """Freeze, unfreeze or wrap the loaded model; return the module to train."""

    def build(self, ctx: ModelContext) -> nn.Module:
        from methods.architecture import ArchitectureError, describe, describe_config

        if why := self.applies_to(describe_config(ctx.path, ctx.num_labels)):  # as the runner refuses it up front
            raise ArchitectureError(f"{self.name} cannot run here: {why}")
        model = self.load_model(ctx)
        self.arch = describe(model)
        if self.params.gradient_checkpointing:
            # use_reentrant=False works with frozen inputs (no enable_input_require_grads needed) and is torch's
            # recommended variant; passing it explicitly also silences the deprecation warning.
            kwargs = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model = self.adapt(model)
        positions_follow_mask(model)
        return model

    def param_groups(self, model: nn.Module) -> list[dict]:
        """Optimizer parameter groups. A group may carry `lr_scale` (multiplies the learning rate)."""
        trainable = [p for p in model.parameters() if p.requires_grad]
        return [{"params": trainable, "weight_decay": self.params.weight_decay}]

    @property
    def wants_example_ids(self) -> bool:
        """True if the model's training forward takes `example_ids` (the batch's example indices, on the host),
        e.g. to cache something per example. Evaluation never passes them."""
        return False

    def on_step(self, model: nn.Module, progress: Progress) -> None:  # noqa: B027 (an optional hook)
        """Called after each optimizer step, before gradients are cleared. Default: nothing."""

    def make_optimizer(self, groups: list[dict], lr: float, fused: bool) -> torch.optim.Optimizer:
        """The optimizer over `groups` (from `param_groups`; the loop sets each group's `lr` every step). `fused`:
        the loop's `fused_adamw` speed-up is on; an optimizer without a fused kernel ignores it. Default: AdamW."""
        return default_optimizer(groups, lr, fused)

    def optimizer_state_bytes(self, model: nn.Module) -> int:
        """The optimizer state training will allocate, in bytes, estimated before the first step (held aside when
        the micro-batch is fitted under --memory-cap). Default: AdamW's two fp32 moments per trainable weight."""
        return sum(2 * 4 * p.numel() for p in model.parameters() if p.requires_grad)

    def stored_values_per_element(self, param: torch.Tensor) -> int:
        """How many of the model's values one stored element of `param` holds, for counting parameters: 1, or 2
        for a weight packed two 4-bit values to a byte (QLoRA)."""
        return 1

    def weight_kind(self, tensor: torch.Tensor) -> str:
        """How a weight or buffer is stored, the memory breakdown's key for it. Default: its dtype (`float32`)."""
        return str(tensor.dtype).removeprefix("torch.")

    def unseen_forward_flops(self, model: nn.Module, tokens: int) -> float:
        """Forward FLOPs over `tokens` tokens in training mode that torch's FLOP counter does not see (a kernel
        outside its registry, such as a quantized base's matmul); added to each measured probe step. Default: 0."""
        return 0.0

    def lr_range(self) -> tuple[float, float]:
        """The learning rates `--tune-lr` searches between (log-spaced): the method's declared range, or a decade
        either side of its default rate."""
        if self.params.lr_range is not None:
            lo, hi = self.params.lr_range
            return float(lo), float(hi)
        return self.params.lr / 10, self.params.lr * 10

    def describe(self) -> dict[str, Any]:
        """The resolved hyperparameters, as stored in every record."""
        return dataclasses.asdict(self.params)

    # Deployment: what a user keeps and serves after training (runners.job.stages.serve). The defaults fit a method that
    # trains tensors of a plain transformers model: it has nothing to merge and saves with safetensors.
    # Whether the trained modules fold into the base's weights (`merge`): True where they do (LoRA, IA³), False
    # where they cannot (virtual tokens), None where the method adds nothing to fold (full, head, BitFit).
    mergeable: ClassVar[bool | None] = None

    def extra_tokens(self) -> int:
        """Positions the method adds to every request beyond the text's own tokens (virtual tokens). Default: 0."""
        return 0

    def deployed(self, model: nn.Module) -> nn.Module:
        """The trained model as it is saved and served, without training-only wrappers. Default: the model."""
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        """The deployed model with the method's modules folded into the base's weights; called only where
        `mergeable` is True, and may change `model` in place. Default: the model as it is."""
        return model

    def save(self, model: nn.Module, folder) -> str:
        """Save what training produced into `folder`, as a user would keep it; return its format (methods.artifacts:
        "model" for a whole model, "tensors" for the trained tensors of a frozen base, "adapter" for peft's).
        Default: the trained tensors alone where they are under half the model, else the whole model."""
        from methods.artifacts import save_trained

        return save_trained(self.deployed(model), folder)

    def load_saved(self, folder, ctx: ModelContext) -> nn.Module:
        """The model `save` wrote to `folder`, loaded back on `ctx.device` in eval mode, as `build` left it to
        predict (positions over real tokens). Default: the formats of `save`'s default."""
        from methods.artifacts import load_trained

        model = load_trained(self, folder, ctx)
        positions_follow_mask(model)
        return model.eval()


def default_optimizer(groups, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW, the optimizer of every method here; `groups` may be parameters or parameter groups."""
    import torch

    return torch.optim.AdamW(groups, lr=lr, fused=fused)


def positions_follow_mask(model: nn.Module) -> None:
    """Number positions over real tokens only, so that left padding (or virtual tokens) shifts nothing.

    GPT-2 (and BERT, Llama...) number positions 0..L-1 whatever the attention mask says, and peft drops
    `position_ids` for prompt learning, so a hook on the transformer body fills them in from the mask (which peft
    extends over virtual tokens). RoBERTa-style embeddings count from `padding_idx + 1` (their own numbering follows
    the pad too, from the input ids): the hook starts there.
    """
    body = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = body.base_model  # transformers: the backbone under the task head (GPT2Model, LlamaModel, BertModel...)
    if "position_ids" not in inspect.signature(body.forward).parameters:
        return
    padding_idx = getattr(getattr(body, "embeddings", None), "padding_idx", None)
    start = 0 if padding_idx is None else padding_idx + 1

    def fill(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None and mask is not None and mask.dim() == 2:
            inputs = args[0] if args and args[0] is not None else kwargs.get("input_ids")
            width = (inputs if inputs is not None else kwargs["inputs_embeds"]).shape[1]
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -width:] + start
        return args, kwargs

    body.register_forward_pre_hook(fill, with_kwargs=True)


def freeze_all_but(model: nn.Module, *name_parts: str) -> nn.Module:
    """Train only parameters whose qualified name contains one of `name_parts`; freeze the rest."""
    for name, param in model.named_parameters():
        param.requires_grad_(any(part in name for part in name_parts))
    return model
