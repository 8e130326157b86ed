"""FourierFT (Gao et al. 2024): each adapted weight's update is the inverse 2-D Fourier transform of a few
trained spectral coefficients at fixed random frequencies (peft `FourierFTConfig`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from methods.base import HParams, hp
from methods.peft_base import ROLES_HELP, TARGETS_HELP, PeftMethod, check_roles
from methods.registry import register

if TYPE_CHECKING:
    from methods.architecture import Architecture


@dataclass
class FourierFtParams(HParams):
    lr: float = hp(5e-3, "peak learning rate of the spectral coefficients and the head")
    lr_range: tuple[float, ...] | None = hp((5e-4, 5e-2), "a few spectral coefficients per layer: above LoRA's range")
    n_frequency: int = hp(1000, "trained spectral coefficients per adapted weight")
    scaling: float = hp(150.0, "scale of the update (the paper's alpha)")
    roles: tuple[str, ...] = hp(("attention", "mlp"), ROLES_HELP)
    targets: tuple[str, ...] = hp((), TARGETS_HELP)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_roles(self.roles, self.targets)
        if self.n_frequency < 1:
            raise ValueError(f"n_frequency must be >= 1, got {self.n_frequency}")


@register("fourierft")
class FourierFt(PeftMethod):
    summary = "FourierFT: a few trained Fourier coefficients per weight update (peft), head trained too"
    Params = FourierFtParams
    trainable = ("fourierft_spectrum", "modules_to_save")

    def applies_to(self, arch: Architecture) -> str | None:
        """peft draws `n_frequency` distinct entries of each adapted weight's spectrum: no more than it has."""
        if (why := super().applies_to(arch)) or self.params.targets:
            return why
        small = min(arch.relative(arch.modules(self.params.roles)), key=lambda rel: math.prod(arch.shapes[rel]))
        if self.params.n_frequency > math.prod(arch.shapes[small]):
            return (f"n_frequency={self.params.n_frequency} exceeds the {math.prod(arch.shapes[small])} entries of "
                    f"{small} ({'×'.join(map(str, arch.shapes[small]))}) here: lower n_frequency")
        return None

    def peft_config(self):
        from peft import FourierFTConfig

        p = self.params
        return FourierFTConfig(n_frequency=p.n_frequency, scaling=p.scaling, target_modules=self.target_modules(),
                               fan_in_fan_out=self.arch.conv1d)
