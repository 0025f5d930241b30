"""Surrogate gradients by name, each with its slope/scale parameter (snnTorch implementations)."""
from __future__ import annotations

from hw.config import ConfigError

#: name -> (snntorch.surrogate factory, its parameter's name, default value, allowed range)
SURROGATES = {
    "atan": ("atan", "alpha", 2.0, (1e-3, 1e3)),
    "fast_sigmoid": ("fast_sigmoid", "slope", 25.0, (1e-3, 1e3)),
    "sigmoid": ("stable_sigmoid", "slope", 25.0, (1e-3, 1e3)),
    "triangular": ("triangular", "threshold", 1.0, (1e-3, 1e3)),
    "straight_through": ("straight_through_estimator", None, None, None),
}


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN/infinite during training."""


def stable_sigmoid(slope: float = 25.0):
    """Heaviside forward, sigmoid-derivative backward ``slope·σ(slope·x)·(1 − σ(slope·x))``.

    snnTorch's ``surrogate.sigmoid`` evaluates ``exp(−slope·x)/(1 + exp(−slope·x))²``, which is inf/inf =
    NaN once ``slope·|x|`` exceeds ~88 (float32); this form is the same function and never overflows."""
    import torch

    class _Sigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            s = torch.sigmoid(slope * x)
            return grad * slope * s * (1 - s)

    return _Sigmoid.apply


def make_surrogate(name: str, scale: float | None = None):
    """The spike_grad for ``name`` (snnTorch's, or a stable equivalent); ``scale`` is its slope/alpha/width."""
    from snntorch import surrogate
    if name not in SURROGATES:
        raise ConfigError(f"surrogate={name!r}: allowed values are {sorted(SURROGATES)}")
    fn, param, default, rng = SURROGATES[name]
    factory = stable_sigmoid if fn == "stable_sigmoid" else getattr(surrogate, fn)
    if param is None:
        return factory()
    scale = default if scale is None else float(scale)
    if not rng[0] <= scale <= rng[1]:
        raise ConfigError(f"surrogate_scale={scale} for {name} ({param}): allowed range is {rng[0]}..{rng[1]}")
    return factory(**{param: scale})
