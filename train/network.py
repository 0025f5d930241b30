"""An snnTorch network that mirrors the chip: same layers, no bias, Leaky neurons with the chip's beta
(as the chip realises it), threshold and reset mode; surrogate chosen by name and scale."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hw.config import ChipConfig, ConfigError
from train.quant import SCALES, fake_quantise, quantise
from train.surrogates import make_surrogate


@dataclass(frozen=True)
class NetSpec:
    """Software-side hyper-parameters (beta lives in the ChipConfig). ``theta`` is the software threshold,
    in the units of the float weights; the chip's threshold (integer LSBs) comes from the quantiser."""
    theta: float = 1.0
    surrogate: str = "atan"
    surrogate_scale: float | None = None
    qat: bool = False
    quantiser: str = "maxabs"             # the per-layer scale rule, train.quant.SCALES

    def __post_init__(self):
        if not (np.isfinite(self.theta) and 0 < self.theta <= 100):
            raise ConfigError(f"theta={self.theta}: allowed range is (0, 100] (software threshold)")
        make_surrogate(self.surrogate, self.surrogate_scale)   # validates name and scale
        if self.quantiser not in SCALES:
            raise ConfigError(f"quantiser={self.quantiser!r}: allowed values are {SCALES}")


class ChipMirrorNet(nn.Module):
    def __init__(self, cfg: ChipConfig, spec: NetSpec = NetSpec(), seed: int = 0):
        super().__init__()
        import snntorch as snn
        torch.manual_seed(seed)
        self.cfg, self.spec = cfg, spec
        self.fc = nn.ModuleList(nn.Linear(cfg.fan_in(l), cfg.fan_out(l), bias=False)
                                for l in range(cfg.num_layers))
        grad = make_surrogate(spec.surrogate, spec.surrogate_scale)
        reset = {"subtract": "subtract", "zero": "zero"}[cfg.reset]
        self.lif = nn.ModuleList(snn.Leaky(beta=cfg.beta_effective[l], threshold=spec.theta,
                                           spike_grad=grad, reset_mechanism=reset)
                                 for l in range(cfg.num_layers))

    def weight(self, l: int) -> torch.Tensor:
        w = self.fc[l].weight.T              # (fan_in, fan_out), the chip's orientation
        return fake_quantise(w, self.cfg, self.spec.theta, self.spec.quantiser) if self.spec.qat else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, steps, N0) 0/1 -> output spikes (batch, steps, N_L)."""
        if x.ndim != 3 or x.shape[2] != self.cfg.layer_sizes[0]:
            raise ConfigError(f"x: expected shape (batch, steps, {self.cfg.layer_sizes[0]}), got {tuple(x.shape)}")
        mems = [lif.init_leaky() for lif in self.lif]
        ws = [self.weight(l) for l in range(self.cfg.num_layers)]
        out = []
        for t in range(x.shape[1]):
            h = x[:, t]
            for l, lif in enumerate(self.lif):
                h, mems[l] = lif(h @ ws[l], mems[l])
            out.append(h)
        return torch.stack(out, dim=1)

    def float_weights(self) -> list[np.ndarray]:
        return [self.fc[l].weight.detach().T.cpu().numpy().astype(np.float64) for l in range(self.cfg.num_layers)]

    def set_float_weights(self, weights) -> None:
        with torch.no_grad():
            for l, w in enumerate(weights):
                self.fc[l].weight.copy_(torch.as_tensor(np.asarray(w).T, dtype=self.fc[l].weight.dtype))

    def to_chip(self) -> tuple[ChipConfig, list[np.ndarray]]:
        """The chip programme: config with quantised thresholds, and integer weights."""
        cfg, ints, _ = quantise(self.cfg, self.float_weights(), self.spec.theta, rule=self.spec.quantiser)
        return cfg, ints
