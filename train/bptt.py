"""Offline surrogate-gradient BPTT in software (snnTorch), then quantise and deploy to the chip."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from hw.config import ChipConfig, ConfigError
from sim.chip import Chip
from train.common import Encoded, TrainResult, accuracy, check_fit, finish, rate_targets
from train.network import ChipMirrorNet, NetSpec
from train.optim import Adam
from train.surrogates import TrainingDiverged


def rate_loss(spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between output firing rates (spikes per step) and target rates."""
    return ((spikes.mean(dim=1) - targets) ** 2).mean()


def silent_loss(y: np.ndarray, n_out: int) -> float:
    """:func:`rate_loss` of an output layer that never fires, on targets for labels ``y`` (what a dead
    network's loss stays at; :func:`train.common.dead_network`)."""
    tgt = torch.as_tensor(rate_targets(y, n_out), dtype=torch.float32)
    return float(rate_loss(torch.zeros(len(y), 1, n_out), tgt))


def software_accuracy(net: ChipMirrorNet, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return accuracy(net(torch.as_tensor(x, dtype=torch.float32)).numpy(), y)


def check_training(epochs: int, lr: float, batch_size: int) -> None:
    if not 1 <= epochs <= 100000:
        raise ConfigError(f"epochs={epochs}: allowed range is 1..100000")
    if not (np.isfinite(lr) and 0 < lr <= 1):
        raise ConfigError(f"lr={lr}: allowed range is (0, 1]")
    if not 1 <= batch_size <= 65536:
        raise ConfigError(f"batch_size={batch_size}: allowed range is 1..65536")


def setup(cfg: ChipConfig, spec: NetSpec, data: Encoded, lr: float, seed: int):
    """The software network, its Adam optimiser, training inputs, rate targets and the shuffling generator."""
    net = ChipMirrorNet(cfg, spec, seed)
    opt = Adam(net.parameters(), lr=lr)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    tgt = torch.as_tensor(rate_targets(data.y_train, cfg.layer_sizes[-1]), dtype=torch.float32)
    return net, opt, x, tgt, torch.Generator().manual_seed(seed)


def update(net: ChipMirrorNet, opt: Adam, loss: torch.Tensor, epoch: int) -> float:
    """One optimiser step; :class:`TrainingDiverged` if the loss or any weight is no longer finite."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss.item()} in epoch {epoch}: lower lr or change the surrogate")
    if not all(torch.isfinite(q).all() for q in net.parameters()):
        raise TrainingDiverged(f"weights became NaN/infinite in epoch {epoch}: lower lr or change the surrogate")
    return loss.item()


def train_bptt(cfg: ChipConfig, spec: NetSpec, data: Encoded, chip: Chip, epochs: int = 30, lr: float = 5e-3,
               batch_size: int = 32, seed: int = 0, progress: bool = True,
               callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """``callback(epoch, validation accuracy)`` after every epoch (it may raise to stop, e.g. a pruner).
    ``spec.qat`` selects quantisation-aware training (weights fake-quantised to the chip's format)."""
    check_fit(cfg, data)
    check_training(epochs, lr, batch_size)
    t0 = time.perf_counter()
    net, opt, x, tgt, gen = setup(cfg, spec, data, lr, seed)
    history = []
    for epoch in tqdm(range(epochs), desc="bptt" + ("+qat" if spec.qat else ""), disable=not progress):
        perm = torch.randperm(len(x), generator=gen)
        losses = []
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            losses.append(update(net, opt, rate_loss(net(x[idx]), tgt[idx]), epoch))
        history.append({"epoch": epoch, "loss": float(np.mean(losses)),
                        "val_accuracy": software_accuracy(net, data.x_val, data.y_val)})
        if callback:
            callback(epoch, history[-1]["val_accuracy"])
    qcfg, ints = net.to_chip()
    return finish("bptt_qat" if spec.qat else "bptt", chip, qcfg, ints, net.float_weights(), data,
                  software_accuracy(net, data.x_test, data.y_test), history, t0,
                  {"silent_loss": silent_loss(data.y_train, cfg.layer_sizes[-1])})
