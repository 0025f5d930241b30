"""Adam for the software networks, without ``torch._dynamo``.

``torch.optim.Adam`` imports ``torch._dynamo`` when it is built (its ``add_param_group`` is wrapped by
``torch._disable_dynamo``, which imports the compiler on the first call): about as much CPU time as importing
torch itself, in every process that trains — serial at the head of ``spikeloop train`` and of every study worker.
Nothing here is compiled, so :class:`Adam` is torch's CPU update written out: the operations, in the order, of
``torch.optim.adam._single_tensor_adam`` (the path ``torch.optim.Adam`` takes for CPU tensors with its default
flags: no AMSGrad, weight decay, maximize, foreach, fused, capturable or differentiable), so its parameters are
bit for bit those of ``torch.optim.Adam(params, lr=lr)`` (``tests/train/test_optim.py``).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba), as ``torch.optim.Adam(params, lr, betas, eps)`` on CPU tensors.

    Members: ``params`` (the tensors it updates), ``lr``, ``betas``, ``eps``.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if isinstance(params, torch.Tensor):     # iterating it would give its rows (views), not the tensor
            raise TypeError("Adam: params must be an iterable of tensors, not a tensor")
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam: no parameters to optimise")
        if len({id(p) for p in self.params}) != len(self.params):   # its moments would be kept twice
            raise ValueError("Adam: a parameter is given more than once")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        if not 0.0 <= self.lr < float("inf"):      # torch.optim.Adam's checks (NaN fails them too)
            raise ValueError(f"Adam: lr={lr}: allowed range is >= 0")
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0):
            raise ValueError(f"Adam: betas={tuple(betas)}: each in [0, 1)")
        if not 0.0 <= self.eps < float("inf"):
            raise ValueError(f"Adam: eps={eps}: allowed range is >= 0")
        # per parameter, as torch: a step count (a float32 tensor read back as a Python float) and two moments
        self._step = [torch.tensor(0.0, dtype=torch.float32) for _ in self.params]
        self._exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self._exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, torch's default)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for p, step_t, exp_avg, exp_avg_sq in zip(self.params, self._step, self._exp_avg, self._exp_avg_sq):
            if p.grad is None:
                continue
            grad = p.grad
            step_t += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = self.lr / bias_correction1
            bias_correction2_sqrt = bias_correction2 ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)
