"""An snnTorch network that mirrors the chip: same layers, Leaky neurons with the chip's beta
(as the chip realises it), threshold and reset mode; surrogate chosen by name and scale.

Conv chips: ``Conv2d(bias=False)`` for conv layers, sum pooling (``AvgPool2d(p, divisor_override=1)``)
for pool entries, ``Linear`` for fc layers. Activity between layers is flat HWC, as on the chip (inputs
arrive HWC-flattened, ``(batch, steps, N0)``): an image layer unflattens (B, H, W, C), permutes to NCHW,
pools, convolves, and permutes back to NHWC before flattening. Weights are handled in the chip's layout
(fc ``(N_in, N_out)``, conv ``(C_in, kh, kw, C_out)``), so the quantiser sees what the chip gets.

An ``update = "touched"`` chip (``docs/chip.md``, "Update by touch") needs nothing else here: in real numbers its
lazy leak *is* the per-step leak (an untouched word that is not hot cannot fire, and ``β^k·u`` after ``k`` idle
steps is ``k`` steps of ``β·u``); the two schedules differ only in the chip's rounding (once per catch-up instead
of once per step), which the chip in the loop (``sim.model.FastModel``, ``sim/lazy.py``) carries.
``tests/train/test_touched_mirror.py`` checks the mirror's forward against the touched chip.

A chip with a bias (``ChipConfig.bias``, ``docs/chip.md`` "Bias") gets a trainable bias per layer (per output
neuron, per conv channel), started at the chip's bias over the layer's first scale, added to the layer's input
current every step (snnTorch's ``mem = β·mem + I + b``: the chip's ``v = leak(u) + ΣW + b``); with ``qat`` it is
fake-quantised at the weights' scale (an integer number of membrane LSBs, clipped to the membrane range), and
:meth:`ChipMirrorNet.to_chip` writes it into the config. A chip without a bias has no bias parameters."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hw.config import ChipConfig, ConfigError
from train.quant import SCALES, fake_quantise, layer_scale, quantise
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
        self.fc = nn.ModuleList(
            nn.Conv2d(cfg.in_shape(l)[0], cfg.out_channels(l), cfg.kernel(l), cfg.stride(l), cfg.padding(l),
                      bias=False) if cfg.layer_kind(l) == "conv" else nn.Linear(cfg.fan_in(l), cfg.fan_out(l), bias=False)
            for l in range(cfg.num_layers))
        self.pool = nn.ModuleList(nn.AvgPool2d(cfg.pool_window(l), divisor_override=1) if cfg.pool_area(l) > 1
                                  else nn.Identity() for l in range(cfg.num_layers))
        self.image = any(self._image(l) for l in range(cfg.num_layers))
        grad = make_surrogate(spec.surrogate, spec.surrogate_scale)
        reset = {"subtract": "subtract", "zero": "zero"}[cfg.reset]
        self.lif = nn.ModuleList(snn.Leaky(beta=cfg.beta_effective[l], threshold=spec.theta,
                                           spike_grad=grad, reset_mechanism=reset)
                                 for l in range(cfg.num_layers))
        self.bias = None
        if cfg.has_bias:            # software units: the chip's LSBs over the layer's scale at the start
            scales = [self._scale(l) for l in range(cfg.num_layers)]
            self.bias = nn.ParameterList(
                nn.Parameter(torch.as_tensor(np.asarray(cfg.bias[l], np.float64) / scales[l], dtype=torch.float32))
                for l in range(cfg.num_layers))

    def _scale(self, l: int) -> float:
        """The quantiser's scale of layer ``l`` for the current weights (LSB per software unit)."""
        w = self.fc[l].weight.detach()
        w = w.permute(1, 2, 3, 0) if w.ndim == 4 else w.T
        return float(layer_scale(self.cfg, w.cpu().numpy(), self.spec.theta, self.spec.quantiser))

    def layer_bias(self, l: int):
        """Layer ``l``'s bias per neuron in HWC order (a conv channel's repeated per position; fake-quantised with
        ``spec.qat``), or ``None`` without a bias."""
        if self.bias is None:
            return None
        b = self.bias[l]
        if self.spec.qat:
            s = self._scale(l)
            q = torch.clamp(torch.round(b * s), self.cfg.membrane_min, self.cfg.membrane_max) / s
            b = b + (q - b).detach()
        return b.repeat(self.cfg.positions(l))

    def _image(self, l: int) -> bool:
        return self.cfg.layer_kind(l) == "conv" or self.cfg.pool_area(l) > 1

    def weight(self, l: int) -> torch.Tensor:
        """Layer ``l``'s weights in the chip's layout (fake-quantised with ``spec.qat``)."""
        w = self.fc[l].weight
        w = w.permute(1, 2, 3, 0) if w.ndim == 4 else w.T      # (C_in, kh, kw, C_out) / (fan_in, fan_out)
        return fake_quantise(w, self.cfg, self.spec.theta, self.spec.quantiser) if self.spec.qat else w

    def synapse(self, l: int, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Synaptic input of layer ``l`` for flat HWC spikes ``h`` (rows, N_raw); ``w`` in chip layout."""
        if not self._image(l):
            return h @ w
        cfg = self.cfg
        C, H, W = cfg.raw_in_shape(l)
        x = self.pool[l](h.reshape(-1, H, W, C).permute(0, 3, 1, 2))
        if cfg.layer_kind(l) == "fc":
            return x.permute(0, 2, 3, 1).reshape(len(h), -1) @ w
        y = nn.functional.conv2d(x, w.permute(3, 0, 1, 2), stride=cfg.stride(l), padding=cfg.padding(l))
        return y.permute(0, 2, 3, 1).reshape(len(h), -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, steps, N0) 0/1 -> output spikes (batch, steps, N_L)."""
        if x.ndim != 3 or x.shape[2] != self.cfg.layer_sizes[0]:
            raise ConfigError(f"x: expected shape (batch, steps, {self.cfg.layer_sizes[0]}), got {tuple(x.shape)}")
        mems = [lif.init_leaky() for lif in self.lif]
        ws = [self.weight(l) for l in range(self.cfg.num_layers)]
        bs = [self.layer_bias(l) for l in range(self.cfg.num_layers)]
        if self.image:          # layer by layer over all steps: one convolution per layer, not per step
            B, T = x.shape[:2]
            h = x
            for l, lif in enumerate(self.lif):
                cur = self.synapse(l, h.reshape(B * T, -1), ws[l]).reshape(B, T, -1)
                if bs[l] is not None:
                    cur = cur + bs[l]
                spk = []
                for t in range(T):
                    s, mems[l] = lif(cur[:, t], mems[l])
                    spk.append(s)
                h = torch.stack(spk, dim=1)
            return h
        out = []
        for t in range(x.shape[1]):
            h = x[:, t]
            for l, lif in enumerate(self.lif):
                h, mems[l] = lif(h @ ws[l] if bs[l] is None else h @ ws[l] + bs[l], mems[l])
            out.append(h)
        return torch.stack(out, dim=1)

    def float_weights(self) -> list[np.ndarray]:
        """Software weights in the chip's layout (fc ``(N_in, N_out)``, conv ``(C_in, kh, kw, C_out)``)."""
        out = []
        for l in range(self.cfg.num_layers):
            w = self.fc[l].weight.detach()
            w = w.permute(1, 2, 3, 0) if w.ndim == 4 else w.T
            out.append(w.cpu().numpy().astype(np.float64))
        return out

    def set_float_weights(self, weights) -> None:
        with torch.no_grad():
            for l, w in enumerate(weights):
                w = np.asarray(w)
                if w.shape != self.cfg.weight_shape(l):
                    raise ConfigError(f"weights[{l}]: expected shape {self.cfg.weight_shape(l)}, got {w.shape}")
                w = w.transpose(3, 0, 1, 2) if w.ndim == 4 else w.T
                self.fc[l].weight.copy_(torch.as_tensor(np.ascontiguousarray(w), dtype=self.fc[l].weight.dtype))

    def to_chip(self) -> tuple[ChipConfig, list[np.ndarray]]:
        """The chip programme: config with quantised thresholds, and integer weights."""
        cfg, ints, scales = quantise(self.cfg, self.float_weights(), self.spec.theta, rule=self.spec.quantiser)
        if self.bias is not None:       # the trained bias in membrane LSBs at each layer's scale
            cfg = cfg.replace(bias=tuple(
                tuple(int(v) for v in np.clip(np.rint(self.bias[l].detach().cpu().numpy().astype(np.float64) * s),
                                              cfg.membrane_min, cfg.membrane_max))
                for l, s in enumerate(scales)))
        return cfg, ints
