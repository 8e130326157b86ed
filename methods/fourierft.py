"""FourierFT (Gao et al. 2024): each adapted weight's update is the inverse 2-D Fourier transform of a few
trained spectral coefficients at fixed random frequencies (peft `FourierFTConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.base import HParams, hp
from methods.peft_base import PeftMethod
from methods.registry import register


@dataclass
class FourierFtParams(HParams):
    lr: float = hp(5e-3, "peak learning rate of the spectral coefficients and the head")
    lr_range: tuple[float, ...] | None = hp((5e-4, 5e-2), "a few spectral coefficients per layer: above LoRA's range")
    n_frequency: int = hp(1000, "trained spectral coefficients per adapted weight")
    scaling: float = hp(150.0, "scale of the update (the paper's alpha)")
    targets: tuple[str, ...] = hp(("c_attn", "c_proj", "c_fc"), "modules to adapt, joined by + on the CLI")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_frequency < 1:
            raise ValueError(f"n_frequency must be >= 1, got {self.n_frequency}")


@register("fourierft")
class FourierFt(PeftMethod):
    summary = "FourierFT: a few trained Fourier coefficients per weight update (peft), head trained too"
    Params = FourierFtParams
    trainable = ("fourierft_spectrum", "modules_to_save")

    def peft_config(self):
        from peft import FourierFTConfig

        p = self.params
        return FourierFTConfig(n_frequency=p.n_frequency, scaling=p.scaling, target_modules=list(p.targets),
                               fan_in_fan_out=True)
