"""Quantisation of software weights to the chip's format — every width and range comes from ChipConfig.

Software units: a layer's threshold is ``theta`` (float), weights are floats. Per layer the quantiser
picks LSBs-per-unit ``s = min(w_max / max|W|, m_max / theta)`` (largest weight uses the full weight
range, threshold still fits the membrane), then chip weights ``round(W·s)`` and chip threshold
``round(theta·s)`` (at least 1). The beta the chip realises is ``cfg.beta_effective``.

Scale rules (:data:`SCALES`): ``"maxabs"`` is the rule above. ``"mse"`` picks, among 48 scales from the
max-abs one up to 8x it (geometric), the one with the least squared error ``Σ(clip(round(W·s))/s − W)²``
(still capped by ``m_max / theta``): at 2 bits (integer weights −2..1) max-abs rounds most weights to
0, and a larger scale that clips the few largest weights keeps the rest.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError


SCALES = ("maxabs", "mse")
_MSE_FACTORS = np.geomspace(1.0, 8.0, 48)


def layer_scale(cfg: ChipConfig, w: np.ndarray, theta: float, rule: str = "maxabs") -> float:
    if rule not in SCALES:
        raise ConfigError(f"quantiser={rule!r}: allowed values are {SCALES}")
    m = float(np.max(np.abs(w))) if np.size(w) else 0.0
    s_w = cfg.weight_max / m if m > 0 else np.inf
    cap = cfg.membrane_max / theta
    if rule == "maxabs" or not np.isfinite(s_w) or s_w >= cap:
        return float(min(s_w, cap))
    cands = np.minimum(s_w * _MSE_FACTORS, cap)
    flat = np.asarray(w, np.float64).ravel()
    q = np.clip(np.rint(flat[None] * cands[:, None]), cfg.weight_min, cfg.weight_max) / cands[:, None]
    return float(cands[int(np.argmin(((q - flat[None]) ** 2).sum(axis=1)))])


def quantise(cfg: ChipConfig, weights: Sequence[np.ndarray], theta: float,
             beta: float | Sequence[float] | None = None, rule: str = "maxabs"
             ) -> tuple[ChipConfig, list[np.ndarray], list[float]]:
    """Float weights -> (chip config with thresholds/beta set, int weights, per-layer scales); ``rule``
    one of :data:`SCALES`."""
    if not (np.isfinite(theta) and theta > 0):
        raise ConfigError(f"threshold={theta}: allowed range is > 0 (software units)")
    if len(weights) != cfg.num_layers:
        raise ConfigError(f"weights: expected {cfg.num_layers} matrices, got {len(weights)}")
    ints, scales, thrs = [], [], []
    for l, w in enumerate(weights):
        w = np.asarray(w, np.float64)
        if w.shape != cfg.weight_shape(l):       # conv: (C_in, kh, kw, C_out), one scale for the kernel
            raise ConfigError(f"weights[{l}]: expected shape {cfg.weight_shape(l)}, got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"weights[{l}]: contains NaN or infinite values")
        s = layer_scale(cfg, w, theta, rule)
        thr = int(np.clip(round(theta * s), 1, cfg.membrane_max))
        ints.append(np.clip(np.rint(w * s), cfg.weight_min, cfg.weight_max).astype(np.int64))
        scales.append(s)
        thrs.append(thr)
    new = cfg.replace(threshold=tuple(thrs), beta=cfg.beta if beta is None else beta)
    return new, ints, scales


def fake_quantise(w, cfg: ChipConfig, theta: float, rule: str = "maxabs"):
    """Torch: ``round(w·s)/s`` clipped to the weight range, with a straight-through gradient."""
    import torch
    s = float(layer_scale(cfg, w.detach().cpu().numpy(), theta, rule))
    q = torch.clamp(torch.round(w * s), cfg.weight_min, cfg.weight_max) / s
    return w + (q - w).detach()
