"""One entry point for a training run: a :class:`train.config.TrainConfig` -> dataset -> encoding -> chip
(with its faults) -> the registered trainer -> :class:`train.common.TrainResult`.

A dead network (silent output layer, :func:`train.common.dead_network`) is flagged in ``result.extra["dead"]``
and warned about once (:class:`train.common.DeadNetworkWarning`; one line on the command line)."""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable

from hw.config import ChipConfig, ConfigError
from sim.chip import check_memory, make_chip
from sim.faults import Faults, FaultyChip
from train.common import DeadNetworkWarning, Encoded, TrainResult, check_fit, dead_network, with_bias_channel
from train.config import TrainConfig, default_chip
from train.data import Split, load_dataset

__all__ = ["TrainConfig", "default_chip", "prepare", "run_training"]


def load_split(tc: TrainConfig) -> Split:
    return load_dataset(tc.dataset, seed=tc.seed, train_size=tc.train_size, path=tc.data_path, steps=tc.steps)


def prepare(tc: TrainConfig, split: Split | None = None) -> tuple[ChipConfig, Encoded]:
    """The chip and the encoded data of ``tc`` (with the bias input channel if ``tc.bias``), checked
    against each other (before any training)."""
    split = split or load_split(tc)
    cfg = tc.chip_for(split.n_features, split.n_classes)
    check_chip_memory(cfg, max(len(split.x_train), len(split.x_val), len(split.x_test)), tc.steps)
    data = with_bias(tc, Encoded.from_split(split, steps=tc.steps, encoder=tc.encoder, seed=tc.seed))
    check_fit(cfg, data)
    return cfg, data


def with_bias(tc: TrainConfig, data: Encoded) -> Encoded:
    """``data`` as ``tc`` trains on it: the bias input channel added when ``tc.bias`` asks for it (data
    shared by a study's trials comes without it)."""
    if tc.bias and not data.bias:
        return with_bias_channel(data)
    if data.bias and not tc.bias:
        raise ConfigError("data: has the bias input channel but the run has no bias input (bias_input)")
    return data


def check_chip_memory(cfg: ChipConfig, samples: int, steps: int) -> None:
    """:func:`sim.chip.check_memory` for a training run, before any long work: a trainer hands the chip at
    most one part of the data at once (MH: the whole training part; every method: the validation and the
    test part), so ``samples`` is the largest part."""
    check_memory(cfg, samples, steps)


def run_training(tc: TrainConfig, data: Encoded | None = None, split: Split | None = None, progress: bool = True,
                 callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train as ``tc`` says. ``data`` (already encoded, e.g. shared by a study's trials) or ``split`` skip
    loading; ``callback(step, value)`` is the trainer's progress report (it may raise to stop)."""
    if data is None:
        cfg, data = prepare(tc, split)
    else:
        data = with_bias(tc, data)
        cfg = tc.chip_for(data.x_train.shape[2] - data.bias, data.n_classes)
        check_chip_memory(cfg, max(len(data.x_train), len(data.x_val), len(data.x_test)), tc.steps)
        check_fit(cfg, data)
    # the asynchronous mode's event order is part of the chip instance: seeded like its fault draws
    chip = make_chip(cfg, tc.backend, **({"seed": tc.faults.seed} if tc.backend == "async" else {}))
    if tc.faults != Faults():
        chip = FaultyChip(chip, tc.faults)
    train = tc.trainer.resolve()
    with torch_threads(tc.threads):
        result = train(cfg, tc.spec, data, chip, seed=tc.seed, progress=progress, callback=callback, **tc.params)
    result.train_config = tc.to_dict()
    reason = dead_network(result)
    if reason:
        result.extra["dead"] = reason
        warnings.warn(f"{tc.method} on {tc.dataset}, seed {tc.seed}: {reason}", DeadNetworkWarning, stacklevel=2)
    return result


@contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for the block, then restored. The mirror networks are small:
    their cost is per-operation overhead, and 2 threads on 2 busy shared cores made BPTT 4x slower
    (30 epochs on breast cancer: 20.5 s with 2 threads, 5.3 s with 1, measured at load average 5)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_inputs(train_config: dict | None, dataset: str | None = None, data_path: str | None = None,
                steps: int | None = None, seed: int = 0):
    """The test inputs a deployed chip is scored on: ``(x (B, T, N0) bool, y, description)``. With a training
    run's ``train_config`` (RUN.json) its own split and encoding (so ``spikeloop run --model RUN`` reproduces
    the run's on-chip test accuracy); otherwise (an imported chip) ``dataset`` split with ``seed``, encoded
    with the rate encoder over ``steps``. ``dataset``/``data_path`` override the run's."""
    if train_config:
        tc = TrainConfig.from_dict(train_config, "train_config")
        changes = {k: v for k, v in (("dataset", dataset), ("data_path", data_path)) if v is not None}
        if dataset is not None and dataset != tc.dataset:
            changes["chip"] = None            # the run's chip shape belongs to its own dataset
        if steps is not None and steps != tc.steps:
            changes["steps"] = steps
        tc = tc.replace(**changes) if changes else tc
        where = f"the run's test split ({tc.dataset}, seed {tc.seed}, {tc.encoder} encoder, {tc.steps} steps)"
    else:
        if dataset is None:
            raise ConfigError("--dataset: required to score a chip without a training run's train_config "
                              "(or give --spikes FILE.npz)")
        tc = TrainConfig(dataset=dataset, data_path=data_path, steps=steps or 16, seed=seed)
        where = f"{tc.dataset} test split (seed {tc.seed}, rate encoder, {tc.steps} steps)"
    split = load_split(tc)
    data = Encoded.from_split(split, steps=tc.steps, encoder=tc.encoder, seed=tc.seed)
    if train_config:            # the run's chip has the bias input if it trained with one (mh, cilspl by default)
        data = with_bias(tc, data)
        where += ", with the bias input" if data.bias else ""
    return data.x_test, data.y_test, where
