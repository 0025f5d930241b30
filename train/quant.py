"""Quantisation of software weights to the chip's format — every width and range comes from ChipConfig.

Software units: a layer's threshold is ``theta`` (float), weights are floats. Per layer the quantiser
picks LSBs-per-unit ``s = min(w_max / max|W|, m_max / theta)`` (largest weight uses the full weight
range, threshold still fits the membrane), then chip weights ``round(W·s)`` and chip threshold
``round(theta·s)`` (at least 1). The beta the chip realises is ``cfg.beta_effective``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError


def layer_scale(cfg: ChipConfig, w: np.ndarray, theta: float) -> float:
    m = float(np.max(np.abs(w))) if np.size(w) else 0.0
    s_w = cfg.weight_max / m if m > 0 else np.inf
    return float(min(s_w, cfg.membrane_max / theta))


def quantise(cfg: ChipConfig, weights: Sequence[np.ndarray], theta: float,
             beta: float | Sequence[float] | None = None) -> tuple[ChipConfig, list[np.ndarray], list[float]]:
    """Float weights -> (chip config with thresholds/beta set, int weights, per-layer scales)."""
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
        s = layer_scale(cfg, w, theta)
        thr = int(np.clip(round(theta * s), 1, cfg.membrane_max))
        ints.append(np.clip(np.rint(w * s), cfg.weight_min, cfg.weight_max).astype(np.int64))
        scales.append(s)
        thrs.append(thr)
    new = cfg.replace(threshold=tuple(thrs), beta=cfg.beta if beta is None else beta)
    return new, ints, scales


def fake_quantise(w, cfg: ChipConfig, theta: float):
    """Torch: ``round(w·s)/s`` clipped to the weight range, with a straight-through gradient."""
    import torch
    s = float(layer_scale(cfg, w.detach().cpu().numpy(), theta))
    q = torch.clamp(torch.round(w * s), cfg.weight_min, cfg.weight_max) / s
    return w + (q - w).detach()
