"""What the peft-based methods share: wrapping the model in the peft config they name, the modules they adapt (by role,
resolved for the model's architecture, or named by the user), and low-rank hyperparameters."""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.architecture import ROLES, ArchitectureError
from methods.base import HParams, Method, hp, positions_follow_mask

if TYPE_CHECKING:
    from torch import nn

    from methods.architecture import Architecture

# Modules peft adds to the model (P-tuning's prompt encoder) whose names end as a head may be named (ModernBERT's
# `head`): peft matches `modules_to_save` by the end of a module's name, so such a head is named with a leading dot,
# which only a name with a prefix, as every module of a peft model has, ends with.
PEFT_OWN = ("mlp_head", "lstm_head")
ROLES_HELP = f"roles to adapt, joined by + ({', '.join(ROLES)}; methods.architecture resolves them per model)"
TARGETS_HELP = "module names to adapt instead of roles, joined by + (e.g. c_attn+c_fc), as peft matches them"


def check_roles(roles: tuple[str, ...], targets: tuple[str, ...]) -> None:
    """A spec's roles are known ones, and it names roles or modules to adapt."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role {', '.join(map(repr, unknown))}; roles: {', '.join(ROLES)}")
    if not roles and not targets:
        raise ValueError("roles or targets must name at least one module")


@dataclass
class LowRankParams(HParams):
    """An adapter of some rank on chosen modules, with dropout on its input (LoRA and its variants, VeRA)."""

    r: int = hp(8, "rank of each adapter's update")
    dropout: float = hp(0.05, "dropout on the adapter's input")
    roles: tuple[str, ...] = hp(("attention", "mlp"), ROLES_HELP)
    targets: tuple[str, ...] = hp((), TARGETS_HELP)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        check_roles(self.roles, self.targets)


class PeftMethod(Method):
    """A method peft implements: a subclass says which peft config wraps the model, and `adapt` wraps it. The
    modules it adapts come from `target_modules` (the spec's `targets=`, else its `roles` for this architecture)."""

    packages = ("peft",)
    mergeable = True  # peft folds most adapters into the base (`merge_and_unload`); virtual tokens say otherwise

    @abstractmethod
    def peft_config(self):
        """The peft config for this method's hyperparameters (`self.arch` is the model's architecture); its
        `task_type` and `modules_to_save` are set by `adapt`."""

    def target_modules(self, roles: tuple[str, ...] | None = None) -> list[str]:
        """The modules to adapt: the spec's `targets=` as the user named them, else the full names of the modules
        that play `roles` (by default the spec's) in this architecture."""
        targets = getattr(self.params, "targets", ())
        if targets:
            return list(targets)
        return self.arch.modules(roles if roles is not None else self.params.roles)

    def applies_to(self, arch: Architecture) -> str | None:
        roles = getattr(self.params, "roles", ())
        if roles and not getattr(self.params, "targets", ()):
            try:
                arch.modules(roles)
            except ArchitectureError as e:
                return str(e)
        return super().applies_to(arch)

    def modules(self) -> dict[str, list[str]]:
        if not getattr(self.params, "roles", None) and not getattr(self.params, "targets", None):
            return {"trained": list(self.arch.head)}
        return {"adapted": self.arch.relative(self.target_modules()), "trained": list(self.arch.head)}

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        config = self.peft_config()
        # Every method here classifies sequences: peft then also trains a copy of the new head (`modules_to_save`),
        # the head as this architecture has it (a `score`; a `classifier`; a `head` and a `classifier`...).
        config.task_type = "SEQ_CLS"
        config.modules_to_save = [f".{h}" if any(own.endswith(h) for own in PEFT_OWN) else h for h in self.arch.head]
        return get_peft_model(model, config)

    def merge(self, model: nn.Module) -> nn.Module:
        return model.merge_and_unload()

    def save(self, model: nn.Module, folder) -> str:
        """peft's own adapter files (`adapter_config.json`, `adapter_model.safetensors`), head included."""
        model.save_pretrained(str(folder))
        return "adapter"

    def load_saved(self, folder, ctx) -> nn.Module:
        """The method's base (as `load_model` loads it: a 4-bit one for QLoRA) with the adapter, through peft."""
        from peft import PeftModel

        model = PeftModel.from_pretrained(self.load_model(ctx), str(folder))
        positions_follow_mask(model)
        return model.eval()
