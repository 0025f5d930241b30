"""What the three trainers share: encoded data, rate targets, chip evaluation and the result format."""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
from sim.chip import Chip
from train.data import Split
from train.encode import encode

#: target output firing rates (spikes per step) for the correct class and the others
RATE_ON, RATE_OFF = 0.8, 0.05


@dataclass
class Encoded(Split):
    """A :class:`train.data.Split` whose ``x`` are spike trains (bool, (samples, steps, features)): what the
    chip and the trainers take. ``bias``: the last input channel is the always-on bias input
    (:func:`with_bias_channel`), not part of the dataset."""
    spikes: bool = True
    bias: bool = False

    @classmethod
    def from_split(cls, split: Split, steps: int = 16, encoder: str = "rate", seed: int = 0) -> "Encoded":
        """Encode a split's features (a split of spike trains is taken as it is)."""
        if split.spikes:
            if split.x_train.shape[1] != steps:
                raise ConfigError(f"steps={steps}: the {split.name} spike trains have {split.x_train.shape[1]} steps")
            return cls(split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test,
                       split.n_classes, split.name, shape=split.shape)
        return cls(encode(split.x_train, steps, encoder, seed), split.y_train,
                   encode(split.x_val, steps, encoder, seed + 1), split.y_val,
                   encode(split.x_test, steps, encoder, seed + 2), split.y_test, split.n_classes, split.name,
                   shape=split.shape)


def with_bias_channel(data: Encoded) -> Encoded:
    """``data`` with one more input channel that spikes at every step (the last input address): a constant
    drive whose weights act as per-neuron biases, e.g. sustained inhibition. The chip needs one more input.
    Selected by :attr:`train.config.TrainConfig.bias_input` (``--bias-input on``)."""
    if data.bias:
        raise ConfigError("data: already has the bias input channel")

    def add(x):
        return np.concatenate([x, np.ones(x.shape[:2] + (1,), dtype=x.dtype)], axis=2)
    return dataclasses.replace(data, x_train=add(data.x_train), x_val=add(data.x_val), x_test=add(data.x_test),
                               bias=True)


def check_fit(cfg: ChipConfig, data: Encoded) -> None:
    """Network and data must agree before training starts."""
    if data.x_train.shape[2] != cfg.layer_sizes[0]:
        extra = f" ({data.x_train.shape[2] - 1} features + the bias input)" if getattr(data, "bias", False) else ""
        raise ConfigError(f"layer_sizes[0]={cfg.layer_sizes[0]} but the data has {data.x_train.shape[2]} input "
                          f"neurons{extra}: they must match")
    if cfg.layer_sizes[-1] != data.n_classes:    # the decoder: class = the output neuron with most spikes
        few = cfg.layer_sizes[-1] < data.n_classes
        raise ConfigError(f"layer_sizes[-1]={cfg.layer_sizes[-1]}: allowed value is {data.n_classes}, one output "
                          f"per class of the {data.name or 'data'} ({data.n_classes} classes): "
                          + ("need at least one output per class" if few else
                             "output neuron i is class i, so the extra outputs answer classes that do not exist"))
    if len(data.x_train) == 0:
        raise ConfigError("data: the training set is empty")
    if cfg.touched and data.x_train.shape[1] > cfg.max_steps:     # the chip would refuse them after training
        raise ConfigError(f"steps={data.x_train.shape[1]}: a chip with update='touched' runs at most "
                          f"max_steps={cfg.max_steps} steps per sample (its step stamps); allowed range is "
                          f"1..{cfg.max_steps}, or raise max_steps (1..65535)")
    if cfg.input_shape is not None and data.shape is not None and tuple(cfg.input_shape) != tuple(data.shape):
        raise ConfigError(f"chip.input_shape={list(cfg.input_shape)}: the {data.name or 'data'} images have shape "
                          f"{list(data.shape)} (C, H, W); they must match")


class DeadNetworkWarning(UserWarning):
    """A trained network whose output layer is silent: it answers class 0 for every sample."""


def one_line_warnings() -> None:
    """Show :class:`DeadNetworkWarning` as one line (``spikeloop: warning: ...``); other warnings as before."""
    import warnings
    if getattr(warnings.formatwarning, "_spikeloop", False):
        return
    plain = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):
        if issubclass(category, DeadNetworkWarning):
            return f"spikeloop: warning: {message}\n"
        return plain(message, category, filename, lineno, line)
    fmt._spikeloop = True
    warnings.formatwarning = fmt


def dead_network(result: "TrainResult") -> str | None:
    """Why ``result`` is a dead network, or None: its chip output layer fired no spike on the validation set,
    or its training loss ended at the value a silent output has (``extra["silent_loss"]``, which the
    gradient trainers derive from their loss; e.g. rate MSE (0.8² + 9·0.05²)/10 for 10 classes)."""
    out = result.val_activity.get("out_events")
    if out is not None and out == 0:
        return "dead network: the output layer fired no spike on the validation set (every answer is class 0)"
    silent = result.extra.get("silent_loss")
    losses = [h["loss"] for h in result.history if "loss" in h]
    if silent is not None and losses and np.isclose(losses[-1], silent, rtol=1e-6, atol=0.0):
        n = 0
        for v in reversed(losses):
            if not np.isclose(v, silent, rtol=1e-6, atol=0.0):
                break
            n += 1
        return (f"dead network: the training loss stayed at {silent:.6g}, the loss of a silent output layer, "
                f"for the last {n} of {len(losses)} epochs")
    return None


def rate_targets(y: np.ndarray, n_out: int) -> np.ndarray:
    t = np.full((len(y), n_out), RATE_OFF)
    t[np.arange(len(y)), y] = RATE_ON
    return t


def predict(spikes: np.ndarray) -> np.ndarray:
    """Class = output neuron with most spikes (ties: lowest index)."""
    return np.asarray(spikes).sum(axis=1).argmax(axis=1)


def accuracy(spikes: np.ndarray, y: np.ndarray) -> float:
    return float((predict(spikes) == y).mean())


def chip_eval(chip: Chip, cfg: ChipConfig, weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray
              ) -> tuple[float, dict[str, float]]:
    """Load the programme, run ``x``; return accuracy and mean per-sample activity counters."""
    chip.load(weights, cfg=cfg)
    r = chip.run(x)
    return accuracy(r.output, y), {k: float(v.mean()) for k, v in r.counters.items()}


@dataclass
class TrainResult:
    """The one result format of every trainer."""
    method: str
    chip_config: dict                      # the deployed ChipConfig (thresholds/beta as programmed)
    chip_weights: list                     # integer weights as deployed
    float_weights: list                    # software weights
    history: list = field(default_factory=list)    # per epoch / iteration records
    software_accuracy: float = float("nan")        # test accuracy of the software network
    chip_accuracy: float = float("nan")            # test accuracy on the chip
    chip_val_accuracy: float = float("nan")
    activity: dict = field(default_factory=dict)   # mean per-sample counters on the test set
    val_activity: dict = field(default_factory=dict)  # the same on the validation set
    extra: dict = field(default_factory=dict)      # method-specific (acceptance rate, ...)
    seconds: float = 0.0
    train_config: dict = field(default_factory=dict)  # the TrainConfig that produced it (TrainConfig.to_dict)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = asdict(self)
        from hw.files import write_atomic, write_text
        d.pop("chip_weights"), d.pop("float_weights")

        def write(p):                   # both written before either is replaced: no run half saved on a full disk
            np.savez(p, **{f"w{l}": np.asarray(w) for l, w in enumerate(self.chip_weights)},
                     **{f"f{l}": np.asarray(w) for l, w in enumerate(self.float_weights)})
            write_text(path.with_suffix(".json"), json.dumps(d, indent=1, default=float))
        write_atomic(path.with_suffix(".npz"), write)

    @classmethod
    def load(cls, path: str | Path) -> "TrainResult":
        path = Path(path)
        d = json.loads(path.with_suffix(".json").read_text())
        d.setdefault("train_config", {})
        with np.load(path.with_suffix(".npz")) as z:
            L = len([k for k in z.files if k.startswith("w")])
            d["chip_weights"] = [z[f"w{l}"] for l in range(L)]
            d["float_weights"] = [z[f"f{l}"] for l in range(L)]
        return cls(**d)


def finish(method: str, chip: Chip, qcfg: ChipConfig, ints, floats, data: Encoded, sw_acc: float,
           history: list, t0: float, extra: dict | None = None) -> TrainResult:
    val_acc, val_act = chip_eval(chip, qcfg, ints, data.x_val, data.y_val)
    test_acc, act = chip_eval(chip, qcfg, ints, data.x_test, data.y_test)
    return TrainResult(method=method, chip_config=qcfg.to_dict(), chip_weights=[np.asarray(w) for w in ints],
                       float_weights=[np.asarray(w) for w in floats], history=history,
                       software_accuracy=sw_acc, chip_accuracy=test_acc, chip_val_accuracy=val_acc,
                       activity=act, val_activity=val_act, extra=extra or {}, seconds=time.perf_counter() - t0)
