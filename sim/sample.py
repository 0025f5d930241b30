"""Sample networks and inputs for demos and benchmarks (seeded; not trained)."""
from __future__ import annotations

import numpy as np

from hw.config import ConfigError, ChipConfig


def random_weights(cfg: ChipConfig, seed: int = 0, input_density: float = 0.1) -> list[np.ndarray]:
    """Gaussian integer weights scaled so that a layer fed at ``input_density`` fires now and then."""
    rng = np.random.default_rng(seed)
    out = []
    for l in range(cfg.num_layers):
        n_active = max(1.0, cfg.synaptic_fan_in(l) * (input_density if l == 0 else 0.1))
        std = 1.5 * cfg.threshold[l] / np.sqrt(n_active)
        w = np.round(rng.normal(0.0, std, cfg.weight_shape(l)))
        out.append(np.clip(w, cfg.weight_min, cfg.weight_max).astype(np.int64))
    return out


def random_spikes(cfg: ChipConfig, batch: int, steps: int, density: float, seed: int = 0) -> np.ndarray:
    """Bernoulli input spikes ``(batch, steps, N0)`` with probability ``density`` per neuron and step."""
    if not 0.0 <= density <= 1.0:
        raise ConfigError(f"density={density}: allowed range is 0..1")
    return np.random.default_rng(seed).random((batch, steps, cfg.layer_sizes[0])) < density
