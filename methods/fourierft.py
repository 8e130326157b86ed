"""FourierFT (Gao et al. 2024): each adapted weight's update is the inverse 2-D Fourier transform of a few
trained spectral coefficients at fixed random frequencies (peft `FourierFTConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.base import HParams, Method, hp
from methods.registry import register


@dataclass
class FourierFtParams(HParams):
    lr: float = hp(5e-3, "peak learning rate of the spectral coefficients and the head")
    n_frequency: int = hp(1000, "trained spectral coefficients per adapted weight")
    scaling: float = hp(150.0, "scale of the update (the paper's alpha)")
    targets: tuple[str, ...] = hp(("c_attn", "c_proj", "c_fc"), "modules to adapt, joined by + on the CLI")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_frequency < 1:
            raise ValueError(f"n_frequency must be >= 1, got {self.n_frequency}")


@register("fourierft")
class FourierFt(Method):
    summary = "FourierFT: a few trained Fourier coefficients per weight update (peft), head trained too"
    Params = FourierFtParams
    trainable = ("fourierft_spectrum", "modules_to_save")

    def adapt(self, model: nn.Module) -> nn.Module:
        from peft import FourierFTConfig, get_peft_model

        p = self.params
        config = FourierFTConfig(task_type="SEQ_CLS", n_frequency=p.n_frequency, scaling=p.scaling,
                                 target_modules=list(p.targets), fan_in_fan_out=True)
        return get_peft_model(model, config)
