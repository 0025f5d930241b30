"""Spike encoders: features -> binary spike trains ``(batch, steps, neurons)`` for the chip.

Standardised features are squashed to firing probabilities with the standard normal CDF, ``p = Φ(z)``
(values in [0, 1] can be passed with ``squash=False``).

* ``rate``    — Bernoulli: a spike with probability ``p`` in every step (seeded).
* ``latency`` — time to first spike: one spike at step ``round((1 − p)·(steps − 1))``; none if
  ``p < min_p``.
* ``delta``   — sigma-delta modulation of a ramp from 0 to ``p``: a spike whenever the accumulated
  change reaches ``threshold``; deterministic, spike count grows with ``p``.
"""
from __future__ import annotations


import numpy as np

from hw.config import ConfigError

#: the registry of encoders: name -> what it does (the functions below, dispatched by :func:`encode`)
ENCODERS = {
    "rate": "Bernoulli spikes with probability Φ(z) in every step (seeded)",
    "latency": "one spike at a time that falls with Φ(z); none below min_p",
    "delta": "sigma-delta modulation of a ramp to Φ(z); deterministic",
}


def to_prob(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr
    return ndtr(np.asarray(x, np.float64))


def encode(x: np.ndarray, steps: int, method: str = "rate", seed: int = 0, squash: bool = True,
           min_p: float = 0.05, threshold: float = 0.1) -> np.ndarray:
    """Encode ``x`` (samples, features) into bool spikes ``(samples, steps, features)``."""
    if method not in ENCODERS:
        raise ConfigError(f"encoder={method!r}: allowed values are {list(ENCODERS)}")
    if not 1 <= int(steps) <= 10000:
        raise ConfigError(f"steps={steps}: allowed range is 1..10000")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ConfigError(f"x: expected a finite (samples, features) array, got shape {x.shape}")
    p = to_prob(x) if squash else x
    if not squash and (p.min(initial=0) < 0 or p.max(initial=0) > 1):
        raise ConfigError("x: with squash=False values must lie in [0, 1]")
    if method == "rate":
        rng = np.random.default_rng(seed)
        return rng.random((x.shape[0], steps, x.shape[1])) < p[:, None, :]
    if method == "latency":
        t = np.rint((1.0 - p) * (steps - 1)).astype(np.int64)
        out = np.zeros((x.shape[0], steps, x.shape[1]), bool)
        b, f = np.nonzero(p >= min_p)
        out[b, t[b, f], f] = True
        return out
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold={threshold}: allowed range is (0, 1]")
    ramp = p[:, None, :] * (np.arange(1, steps + 1) / steps)[None, :, None]
    level = np.floor(ramp / threshold + 1e-9)
    prev = np.concatenate([np.zeros_like(level[:, :1]), level[:, :-1]], axis=1)
    return level > prev


def delta_timeseries(x: np.ndarray, threshold: float, off_spikes: bool = True) -> np.ndarray:
    """Delta modulation of a time series ``(samples, steps, features)``: on-spike when the signal rose
    by ``threshold`` since the last spike's reference, off-spike (second half of the channels) when it fell."""
    x = np.asarray(x, np.float64)
    ref = x[:, 0].copy()
    on = np.zeros(x.shape, bool)
    off = np.zeros(x.shape, bool)
    for t in range(1, x.shape[1]):
        up = x[:, t] - ref >= threshold
        down = ref - x[:, t] >= threshold
        on[:, t], off[:, t] = up, down
        ref = np.where(up | down, x[:, t], ref)
    return np.concatenate([on, off], axis=2) if off_spikes else on
