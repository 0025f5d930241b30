"""The registry of trainers: one entry per training method, with its function and its parameters.

Every place that lists methods or their parameters reads :data:`TRAINERS`: :class:`train.config.TrainConfig`
validates against it, :func:`train.run.run_training` dispatches through it, the command line makes its
``--method`` choices and method flags from it, and a study's ``[search.<method>]`` ranges are checked
against each :class:`Param`'s range.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from hw.config import ConfigError


@dataclass(frozen=True)
class Param:
    """One method parameter: default, allowed range (inclusive) and whether it is an integer / log-scaled."""
    name: str
    default: Any
    low: float
    high: float
    integer: bool = False
    log: bool = False
    help: str = ""

    def check(self, value, where: str = "") -> Any:
        """``value`` converted to the parameter's type, or a ConfigError naming the parameter and range."""
        label = f"{where}{self.name}"
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label}={value!r}: expected a number in {self.range_text}")
        if self.integer and int(value) != value:
            raise ConfigError(f"{label}={value!r}: must be an integer in {self.range_text}")
        if not (self.low <= value <= self.high):         # NaN fails this too
            raise ConfigError(f"{label}={value!r}: allowed range is {self.range_text}")
        return int(value) if self.integer else float(value)

    @property
    def range_text(self) -> str:
        if self.integer:
            return f"integers {int(self.low)}..{int(self.high)}"
        return f"{self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class Trainer:
    """A training method: ``function(cfg, spec, data, chip, seed=, progress=, callback=, **params)``."""
    name: str
    function: str                   # "module:function", imported on first use (torch stays unloaded until then)
    params: tuple[Param, ...]
    description: str
    qat: bool = False               # the software mirror fake-quantises its weights (BPTT+QAT)
    chip_in_loop: bool = True       # the chip is used during training, not only to deploy
    #: the method's default for :attr:`train.config.TrainConfig.bias_input` (an always-on input channel),
    #: the set-up chosen on validation accuracy (docs/guides/training.md, record ``mh_setup``)
    bias_input: bool = False
    #: the reset mode of the default chip (:func:`train.config.default_chip`, when no chip is given): a chip
    #: register, chosen with ``bias_input`` on validation accuracy
    reset: str = "subtract"

    def resolve(self) -> Callable:
        module, fn = self.function.split(":")
        return getattr(importlib.import_module(module), fn)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ConfigError(f"{self.name} has no parameter {name!r}; its parameters: {self.param_names}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def complete(self, given: dict) -> dict:
        """``given`` checked against the parameters and completed with their defaults."""
        unknown = set(given) - set(self.param_names)
        if unknown:
            raise ConfigError(f"method {self.name!r} has no parameters {sorted(unknown)}; "
                              f"its parameters: {list(self.param_names)}")
        out = {p.name: p.check(given.get(p.name, p.default), f"{self.name}.") for p in self.params}
        return out


_GRADIENT = (Param("epochs", 30, 1, 100000, integer=True, help="passes over the training set"),
             Param("lr", 5e-3, 1e-6, 1.0, log=True, help="Adam learning rate"),
             Param("batch_size", 32, 1, 65536, integer=True, help="samples per gradient step"))

TRAINERS: dict[str, Trainer] = {t.name: t for t in (
    Trainer("bptt", "train.bptt:train_bptt", _GRADIENT,
            "offline surrogate-gradient BPTT (snnTorch), quantised and deployed after training",
            chip_in_loop=False),
    Trainer("bptt_qat", "train.bptt:train_bptt", _GRADIENT,
            "BPTT with quantisation-aware training (weights fake-quantised to the chip's format)",
            qat=True, chip_in_loop=False),
    Trainer("cilspl", "train.cilspl:train_cilspl", _GRADIENT,
            "CIL-SPL: the chip's spikes forward, the software mirror's surrogate gradients backward",
            bias_input=True, reset="zero"),
    Trainer("mh", "train.mh:train_mh", (
        Param("iters", 3000, 1, 10_000_000, integer=True, help="chain length"),
        Param("burn_in", None, 0, 10_000_000, integer=True,
              help="iterations that adapt the step and are discarded (default: half of iters)"),
        Param("thin", 5, 1, 10_000_000, integer=True, help="keep every thin-th state after burn-in"),
        Param("prior_std", 0.5, 1e-3, 100.0, log=True, help="Gaussian prior std of the weights"),
        Param("lik_std", 0.5, 1e-3, 100.0, log=True, help="likelihood std on output firing rates"),
        Param("step", 0.05, 1e-6, 10.0, log=True, help="initial proposal step"),
        Param("target_accept", 0.3, 0.01, 0.99, help="acceptance rate the burn-in adapts the step toward"),
        Param("block_frac", 0.1, 1e-4, 1.0, log=True, help="fraction of the weights changed per proposal"),
        Param("gain_std", 1.0, 1e-3, 100.0, log=True, help="prior std of the per-layer log-gains"),
        Param("class_temp", None, 1e-3, 1000.0, log=True,
              help="categorical likelihood on output spike counts with this softmax temperature "
                   "(default: the rate likelihood)"),
        Param("temper", 1.0, 1e-4, 1.0, log=True,
              help="likelihood exponent at the start of burn-in, rising to 1 by half of burn-in"),
        Param("layer_steps", 0, 0, 1, integer=True,
              help="1: propose within one layer at a time, one adapted step size per layer")),
        "Metropolis-Hastings: weights inferred from the chip's answers alone (no gradients)",
        bias_input=True, reset="zero"),
)}

METHODS = tuple(TRAINERS)


def get_trainer(name: str) -> Trainer:
    if name not in TRAINERS:
        raise ConfigError(f"method={name!r}: allowed values are {list(TRAINERS)}")
    return TRAINERS[name]
