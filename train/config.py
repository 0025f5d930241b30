"""The one description of a training run: :class:`TrainConfig`, frozen and validated on construction.

The command line (``spikeloop train``), :func:`train.run.run_training` and the study objective
(:mod:`tune.objective`) all build one and hand it over whole; nothing downstream re-assembles its parts.
Choices come from the registries: :data:`train.data.DATASETS`, :data:`train.encode.ENCODERS`,
:data:`train.trainers.TRAINERS` (with each method's parameters), :data:`train.surrogates.SURROGATES`,
:data:`sim.chip.BACKENDS`.

Names: ``theta`` is the **software** firing threshold (float, in the units of the software weights);
the chip's threshold is ``ChipConfig.threshold``, integer membrane LSBs, set by the quantiser.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from hw.config import ChipConfig, ConfigError, check_int  # noqa: F401 (re-exported: the one integer check)
from sim.chip import BACKENDS
from sim.faults import Faults
from train.data import DATASETS, check_shape
from train.encode import ENCODERS
from train.network import NetSpec
from train.quant import SCALES
from train.surrogates import SURROGATES
from train.trainers import TRAINERS, get_trainer

#: hidden-layer width of the default chip per dataset (``dataset -> hidden``; others: 64)
DEFAULT_HIDDEN = {"breast_cancer": 16}

#: the fields of a config file's ``[data]`` table: :class:`TrainConfig` fields, read by ``spikeloop train
#: --config`` and by a study's config alike
DATA_FIELDS = ("dataset", "data_path", "steps", "encoder", "train_size")


def data_table(d, where: str = "data") -> dict:
    """A ``[data]`` table checked for unknown fields (the values are checked by :class:`TrainConfig`)."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"[{where}]: expected a table, got {d!r}")
    unknown = set(d) - set(DATA_FIELDS)
    if unknown:
        raise ConfigError(f"[{where}]: unknown fields {sorted(unknown)}; allowed: {sorted(DATA_FIELDS)}")
    return dict(d)




def check_float(name: str, v, lo: float, hi: float, open_low: bool = False) -> float:
    """``v`` if it is a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``open_low``), else a ConfigError
    naming ``name`` and the range."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (lo < v if open_low else lo <= v) and v <= hi
    if not ok:
        raise ConfigError(f"{name}={v!r}: allowed range is {'(' if open_low else '['}{lo:g}, {hi:g}]")
    return float(v)


def check_choice(name: str, v, allowed) -> str:
    """``v`` if it is one of ``allowed``, else a ConfigError naming ``name`` and the allowed values."""
    if v not in allowed:
        raise ConfigError(f"{name}={v!r}: allowed values are {list(allowed)}")
    return v


class FrozenParams(dict):
    """A read-only dict (method parameters of a frozen config); picklable for worker processes."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("TrainConfig.params is read-only: use TrainConfig.replace(params=...)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly

    def __hash__(self):
        return hash(tuple(sorted(self.items())))

    def __reduce__(self):
        return FrozenParams, (dict(self),)


def default_chip(dataset: str, n_features: int, n_classes: int, hidden: int | None = None,
                 reset: str = "subtract") -> ChipConfig:
    """The chip a dataset trains on when none is given: ``n_features``-``hidden``-``n_classes``, 8 lanes
    (``n_features`` counts every input the chip gets, the bias input too); ``reset``: the training method's
    (``Trainer.reset``)."""
    h = hidden or DEFAULT_HIDDEN.get(dataset, 64)
    return ChipConfig(layer_sizes=(n_features, h, n_classes), lanes=8, beta=0.9, reset=reset)


@dataclass(frozen=True)
class TrainConfig:
    """Dataset, encoder, steps, method and its parameters, surrogate, faults, chip and seed of one run."""
    method: str = "mh"
    dataset: str = "breast_cancer"
    data_path: str | None = None          # a user's local files (datasets that need them)
    encoder: str = "rate"
    steps: int = 16
    train_size: int | None = None
    theta: float = 1.0                    # software threshold
    surrogate: str = "atan"
    surrogate_scale: float | None = None  # None: the surrogate's default
    quantiser: str = "maxabs"             # per-layer weight scale rule (train.quant.SCALES)
    params: Mapping[str, Any] = field(default_factory=dict)   # method parameters (completed with defaults)
    faults: Faults = Faults()
    chip: ChipConfig | None = None        # None: default_chip(dataset, ...)
    backend: str = "fast"
    seed: int = 0
    threads: int = 1                      # torch threads of the software network (see train.run)
    #: one more input that spikes at every step (:func:`train.common.with_bias_channel`); its weights act as
    #: per-neuron biases. None: the method's default (``Trainer.bias_input``; off on conv chips).
    #: The chip's ``layer_sizes[0]`` counts it.
    bias_input: bool | None = None

    def __post_init__(self):
        check_choice("method", self.method, TRAINERS)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("encoder", self.encoder, ENCODERS)
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_choice("quantiser", self.quantiser, SCALES)
        check_choice("backend", self.backend, [b for b in BACKENDS if b != "board"])
        # stored as int: a config file's 16.0 passes the check and must not reach numpy's shapes as a float
        for name, lo, hi in (("steps", 1, 10000), ("seed", 0, 2**32 - 1), ("threads", 1, 256)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo, hi))
        if self.train_size is not None:
            object.__setattr__(self, "train_size", check_int("train_size", self.train_size, 1, 10_000_000))
        if self.data_path is not None and not isinstance(self.data_path, str):
            raise ConfigError(f"data_path={self.data_path!r}: expected a path")
        if DATASETS[self.dataset].needs_path and not self.data_path:
            raise ConfigError(f"dataset={self.dataset!r} reads local files: give data_path (--data-path)")
        check_float("theta", self.theta, 0.0, 100.0, open_low=True)
        if self.chip is not None and not isinstance(self.chip, ChipConfig):
            raise ConfigError(f"chip: expected a ChipConfig, got {type(self.chip).__name__}")
        if self.chip is not None:
            check_shape(self.dataset, self.chip.input_shape)
        if not isinstance(self.faults, Faults):
            raise ConfigError(f"faults: expected a Faults, got {type(self.faults).__name__}")
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"params: expected a table of {self.method} parameters, got {self.params!r}")
        object.__setattr__(self, "params", FrozenParams(get_trainer(self.method).complete(dict(self.params))))
        if self.bias_input is not None and not isinstance(self.bias_input, bool):
            raise ConfigError(f"bias_input={self.bias_input!r}: expected true or false")
        if self.bias_input and self.chip is not None and self.chip.input_shape is not None:
            raise ConfigError("bias_input=true: a conv chip (input_shape) has no place for the always-on bias "
                              "input; set bias_input=false")
        self.spec     # validates surrogate and its scale

    # -- what the pieces downstream need -------------------------------------------------------------
    @property
    def trainer(self):
        """The method's :class:`train.trainers.Trainer` (function, parameters, description)."""
        return TRAINERS[self.method]

    @property
    def bias(self) -> bool:
        """Whether the run has the bias input: ``bias_input``, or when that is None the method's default
        (off on a conv chip)."""
        if self.bias_input is not None:
            return self.bias_input
        return bool(self.trainer.bias_input and (self.chip is None or self.chip.input_shape is None))

    @property
    def spec(self) -> NetSpec:
        """The software mirror's hyper-parameters."""
        return NetSpec(theta=self.theta, surrogate=self.surrogate, surrogate_scale=self.surrogate_scale,
                       quantiser=self.quantiser,
                       qat=self.trainer.qat)

    def chip_for(self, n_features: int, n_classes: int) -> ChipConfig:
        """The chip to train for: ``chip`` if set, else the dataset's default (``n_features``-hidden-``n_classes``;
        the bias input, if any, comes on top; the method's reset mode)."""
        return self.chip or default_chip(self.dataset, n_features + self.bias, n_classes,
                                         reset=self.trainer.reset)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` (validated again); another ``method`` without ``params`` gets that method's
        default parameters."""
        if "method" in changes and changes["method"] != self.method:
            changes.setdefault("params", {})        # another method: its own defaults
        return dataclasses.replace(self, **changes)

    # -- files ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain fields (JSON-able): what a :class:`train.common.TrainResult` stores."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["params"] = dict(self.params)
        d["faults"] = dataclasses.asdict(self.faults)
        d["chip"] = self.chip.to_dict() if self.chip else None
        d["bias_input"] = self.bias                 # as the run had it (a method default written out)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "train") -> "TrainConfig":
        """From a ``[train]`` table (TOML/JSON); every bad field gives a ConfigError naming it."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"[{where}]: expected a table, got {d!r}")
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"[{where}]: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
        if "faults" in d:
            d["faults"] = Faults.from_dict(d["faults"], f"{where}.faults")
        if d.get("chip") is not None:
            d["chip"] = ChipConfig.from_dict(d["chip"])
        return cls(**d)

