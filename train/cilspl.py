"""CIL-SPL, chip-in-the-loop proxy learning: the chip does the forward pass, the software graph the backward.

Each step: quantise the current weights and write them to the chip; run the batch on the chip and on
the software network; replace the software output spikes by the chip's in the loss
(``s_sw + (s_chip − s_sw).detach()``: the value is the chip's, the gradient flows through the software
graph, BPTT over the time steps); update.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from hw.config import ChipConfig
from sim.chip import Chip
from train.bptt import check_training, rate_loss, setup, silent_loss, software_accuracy, update
from train.common import Encoded, TrainResult, check_fit, finish
from train.network import NetSpec


def train_cilspl(cfg: ChipConfig, spec: NetSpec, data: Encoded, chip: Chip, epochs: int = 30, lr: float = 5e-3,
                 batch_size: int = 32, seed: int = 0, progress: bool = True,
                 callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """``callback(epoch, on-chip training accuracy)`` after every epoch (it may raise to stop)."""
    check_fit(cfg, data)
    check_training(epochs, lr, batch_size)
    t0 = time.perf_counter()
    net, opt, x, tgt, gen = setup(cfg, spec, data, lr, seed)
    history = []
    for epoch in tqdm(range(epochs), desc="cil-spl", disable=not progress):
        perm = torch.randperm(len(x), generator=gen)
        losses, hits = [], 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            qcfg, ints = net.to_chip()
            chip.load(ints, cfg=qcfg)
            chip_out = torch.as_tensor(chip.run(data.x_train[idx.numpy()]).output, dtype=torch.float32)
            sw_out = net(x[idx])
            mixed = sw_out + (chip_out - sw_out).detach()
            losses.append(update(net, opt, rate_loss(mixed, tgt[idx]), epoch))
            hits += int((chip_out.sum(1).argmax(1).numpy() == data.y_train[idx.numpy()]).sum())
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "chip_train_accuracy": hits / len(x)})
        if callback:
            callback(epoch, hits / len(x))
    qcfg, ints = net.to_chip()
    return finish("cilspl", chip, qcfg, ints, net.float_weights(), data,
                  software_accuracy(net, data.x_test, data.y_test), history, t0,
                  {"silent_loss": silent_loss(data.y_train, cfg.layer_sizes[-1])})
