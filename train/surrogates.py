"""Surrogate gradients by name, each with its slope/scale parameter (snnTorch implementations)."""
from __future__ import annotations

from hw.config import ConfigError

#: name -> (snntorch.surrogate factory, its parameter's name, default value, allowed range)
SURROGATES = {
    "atan": ("atan", "alpha", 2.0, (1e-3, 1e3)),
    "fast_sigmoid": ("fast_sigmoid", "slope", 25.0, (1e-3, 1e3)),
    "sigmoid": ("sigmoid", "slope", 25.0, (1e-3, 1e3)),
    "triangular": ("triangular", "threshold", 1.0, (1e-3, 1e3)),
    "straight_through": ("straight_through_estimator", None, None, None),
}


def make_surrogate(name: str, scale: float | None = None):
    """The snnTorch spike_grad for ``name``; ``scale`` is its slope/alpha/width (default if None)."""
    from snntorch import surrogate
    if name not in SURROGATES:
        raise ConfigError(f"surrogate={name!r}: allowed values are {sorted(SURROGATES)}")
    fn, param, default, rng = SURROGATES[name]
    if param is None:
        return getattr(surrogate, fn)()
    scale = default if scale is None else float(scale)
    if not rng[0] <= scale <= rng[1]:
        raise ConfigError(f"surrogate_scale={scale} for {name} ({param}): allowed range is {rng[0]}..{rng[1]}")
    return getattr(surrogate, fn)(**{param: scale})
